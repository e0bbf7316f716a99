"""The MM-Zero recipe: Proposer -> Coder -> sandboxed render -> Solver, from zero images.

The Proposer (text only, no image) imagines a visual concept: a caption, a
content type, an easy and a hard 4-option question with their answers. The
Coder turns the caption into a program (SVG first, Python with PIL or
matplotlib second) that `retrieval.render` runs in its sandbox; every image
that renders is stored with the iteration's curriculum (source
`mmzero-render`, never in the foundation pool), so the shared loop, its checks,
lineage and the Solver resolve it like any other image. The previous Solver
answers both questions m times. Order per iteration: Proposer -> Coder ->
Solver -> evaluation; no input image is needed anywhere (the pool may be empty).

Keep rule (declared, so the gate checks it): easy questions with c >=
easy_min; hard questions with c in [hard_low, hard_high] whose render's easy
question passed.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from models.generation import GenerationRequest, SamplingParams, build_messages
from recipes.core.context import IterationContext
from recipes.core.keep import KeepRule
from recipes.core.questioner import MalformedOutput
from recipes.core.recipe import Recipe
from recipes.core.registry import register_recipe
from recipes.core.types import MalformedTask, ProposedTask, RoleTraining
from recipes.mmzero.config import PROFILES, MMZeroConfig
from recipes.mmzero.formats import PROPOSER_PROMPT, Proposal, coder_prompt, generate_proposals, mmzero_examples, parse_proposer, try_parse
from recipes.mmzero.render import RENDER_SOURCE, render_id, render_program
from recipes.mmzero.report import curriculum_audit
from recipes.mmzero.rewards import CoderReward, ProposerReward
from retrieval.sources.base import ImageRecord


@register_recipe("mmzero")
class MMZero(Recipe):
    """Proposer (text) -> Coder (program -> sandboxed render) -> Solver x m on both questions -> Solver GRPO."""

    roles = ("proposer", "coder", "solver")
    config_class = MMZeroConfig
    profiles = PROFILES
    drop_reasons = ("render_failed",)
    generated_sources = (RENDER_SOURCE,)
    description = "MM-Zero: a Proposer imagines, a Coder renders in a sandbox, the Solver learns; no input images."

    def keep_rule(self, cfg: MMZeroConfig) -> KeepRule:
        return KeepRule({"easy": (cfg.easy_min, 1.0), "hard": (cfg.hard_low, cfg.hard_high)},
                        requires={"hard": "easy"}, group_key="item")

    def warm_start_formats(self):
        return {"mmzero": mmzero_examples}

    # ------------------------------------------------------------------ training the task makers

    def role_training(self, role: str, ctx: IterationContext) -> RoleTraining:
        cfg: MMZeroConfig = ctx.config
        solver = ctx.engine(ctx.parents["solver"])
        if role == "proposer":
            rows = [{"prompt": build_messages(PROPOSER_PROMPT, 0)} for _ in range(cfg.task_maker_images)]
            reward = ProposerReward(ctx.engine(ctx.parents["coder"]), solver, cfg, cfg.seed)
        elif role == "coder":
            # captions from this iteration's Proposer (trained just before), its parent if run on its own
            proposer = ctx.engine(ctx.trained.get("proposer", ctx.parents["proposer"]))
            props = self._well_formed(ctx, proposer, cfg.task_maker_images)
            rows = [{"prompt": build_messages(coder_prompt(p.caption, cfg.render_size), 0), "proposal": json.dumps(asdict(p))}
                    for p in props]
            reward = CoderReward(solver, cfg, cfg.seed)
        else:
            raise ValueError(f"MM-Zero trains task-maker roles 'proposer' and 'coder', not {role!r}")
        return RoleTraining(rows=rows, reward_funcs=[reward], reward_weights=[1.0], stats=reward.stats)

    def _well_formed(self, ctx: IterationContext, proposer, n: int, attempts: int = 4) -> list[Proposal]:
        out: list[Proposal] = []
        for a in range(attempts):
            for text in generate_proposals(proposer, n, ctx.config.task_temperature or 0.7, ctx.config.task_max_new_tokens,
                                           ctx.config.seed + 1000 * ctx.iteration + a):
                if (p := try_parse(text)) is not None:
                    out.append(p)
            if len(out) >= n:
                return out[:n]
        if not out:
            raise ValueError(f"the Proposer wrote no well-formed item in {attempts * n} tries: the Coder has no captions "
                             "to train on (is the base model warm-started with the MM-Zero formats?)")
        return out

    # ------------------------------------------------------------------ building the task set

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        """Proposer texts -> Coder programs -> sandboxed renders (stored with the iteration) -> two questions per render."""
        cfg: MMZeroConfig = ctx.config
        texts = generate_proposals(makers["proposer"], cfg.images_per_iteration, cfg.task_temperature, cfg.task_max_new_tokens,
                                   cfg.seed + ctx.iteration)
        parsed: list[Proposal | MalformedOutput] = []
        for t in texts:
            try:
                parsed.append(parse_proposer(t))
            except MalformedOutput as err:
                parsed.append(err)
        good = [i for i, p in enumerate(parsed) if isinstance(p, Proposal)]
        replies = makers["coder"].generate(
            [GenerationRequest(coder_prompt(parsed[i].caption, cfg.render_size)) for i in good],
            SamplingParams(n=1, temperature=cfg.task_temperature, max_new_tokens=cfg.coder_max_new_tokens, seed=cfg.seed + ctx.iteration),
        ) if good else []
        program = dict(zip(good, (r for (r,) in replies)))
        proposals: list = []
        records: list[ImageRecord] = []
        for k, (text, p) in enumerate(zip(texts, parsed)):
            if not isinstance(p, Proposal):
                proposals.append(MalformedTask("", text, str(p), meta={"item": k}))
                continue
            kind, prog, res = render_program(program[k], cfg)
            meta = {"item": k, "caption": p.caption, "content_type": p.content_type, "proposer_text": text,
                    "program": prog or program[k], "program_kind": kind or "", "render_status": res.status,
                    "render_seconds": round(res.seconds, 3)}
            if not res.ok:
                proposals.append(MalformedTask("", program[k], f"render {res.status}: {res.reason}", kind="render_failed",
                                               meta={**meta, "render_tail": res.stdout_tail[-500:]}))
                continue
            image_id = render_id(ctx.partition, res.image)
            records.append(ImageRecord(id=image_id, source=RENDER_SOURCE, image=res.image, caption=p.caption, difficulty=0,
                                       meta={"kind": "", "iteration": ctx.iteration, "partition": ctx.partition,
                                             "content_type": p.content_type, "program_kind": kind, "program": prog}))
            for which, q, o, a in (("easy", p.easy, p.easy_options, p.easy_answer), ("hard", p.hard, p.hard_options, p.hard_answer)):
                proposals.append(ProposedTask(image_id, q, list(o), {**meta, "question_kind": which, "answer": a, "raw": text}))
        if records:
            ctx.images.add(records)  # with this iteration's curriculum: the Solver, checks and lineage resolve them by id
        return proposals

    def task_set_metadata(self, df, ctx: IterationContext) -> dict:
        return curriculum_audit(df, ctx.image)
