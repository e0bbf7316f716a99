"""MM-Zero: Proposer + Coder + Solver from zero data (recipes.md, "MM-Zero").

The Proposer (text only, no image) imagines a visual concept: a caption, a
content type, an easy and a hard 4-option question with their answers. The
Coder turns the caption into a program (SVG first, Python with PIL or
matplotlib second) that `retrieval.render` runs in its sandbox; every image
that renders joins the iteration's curriculum as a pool image of source
`mmzero-render`, so the shared loop, its checks, lineage and the Solver resolve
it like any other image. The previous Solver answers both questions m times.
Order per iteration: Proposer -> Coder -> Solver -> evaluation; no input image
is needed anywhere (the pool may be empty).

Rewards (`recipes.mmzero_rewards`): the Coder's renderable + solvability +
difficulty with penalties and floor, the Proposer's frontier score with the
low-difficulty, content-type and BLEU-diversity penalties; -1 for bad format.
Solver keep filter: easy questions with c >= 0.5; hard questions with c in
[0.25, 0.75] whose render passed the easy check.

Proposer output format:

    <caption>two shapes: a red circle and a blue square</caption>
    <type>shapes</type>
    <easy>What color is the circle?
    A. red
    B. blue
    C. green
    D. yellow</easy>
    <easy_answer>A</easy_answer>
    <hard>How many shapes are there?
    A. 1
    B. 2
    C. 3
    D. 4</hard>
    <hard_answer>B</hard_answer>

Coder output: one SVG document (or a fenced ```python block writing out.png).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

from models.formats import LETTERS, format_options, solver_prompt
from models.generation import GenerationRequest, SamplingParams, build_messages
from models.grpo import GRPOHyperParams
from models.warmstart import SupervisedExample
from recipes.base import Recipe, RoleTraining, register_recipe
from recipes.loop import IterationContext, LoopConfig, MalformedTask, ProposedTask
from recipes.mmzero_rewards import coder_reward, proposer_rewards
from recipes.rewards import completion_text
from recipes.voting import band_reason, majority_vote, sample_choices

RENDER_SOURCE = "mmzero-render"  # listed in recipes.loop.GENERATED_SOURCES
PROPOSER_PROMPT = (
    "Imagine a simple image. Write its caption, its content type, an easy question and a hard question "
    "about it, each with four options A-D and the answer."
)
_FIELDS = ("caption", "type", "easy", "easy_answer", "hard", "hard_answer")
_TAGS = re.compile(r"\s*".join(rf"<{f}>(?P<{f}>.*?)</{f}>" for f in _FIELDS), re.DOTALL)
_OPTION = re.compile(r"^([A-Z])\.\s*(.+)$")


def coder_prompt(caption: str, size: int = 64) -> str:
    return f"Write an SVG program of {size}x{size} pixels that draws: {caption}"


@dataclass(frozen=True)
class MMZeroOptions:
    """MM-Zero's own knobs (frozen in `LoopConfig.recipe_options`)."""

    render_size: int = 64
    coder_samples: int = 2  # Coder programs per Proposer item inside the Proposer's reward
    coder_temperature: float = 1.0
    coder_max_new_tokens: int = 1024
    allow_python: bool = True  # the paper's form; the released code renders SVG only (False)
    easy_min: float = 0.5
    hard_low: float = 0.25
    hard_high: float = 0.75
    bleu_threshold: float = 0.5
    render_wall_seconds: float = 5.0

    @classmethod
    def of(cls, cfg: LoopConfig) -> MMZeroOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.recipe_options.items() if k in known})


@dataclass(frozen=True)
class Proposal:
    caption: str
    content_type: str
    easy: str
    easy_options: tuple[str, ...]
    easy_answer: str
    hard: str
    hard_options: tuple[str, ...]
    hard_answer: str


class MalformedOutput(ValueError):
    """Proposer text that does not follow the format; the message says what is wrong."""


def proposer_target(caption: str, content_type: str, easy: tuple[str, list[str], str], hard: tuple[str, list[str], str]) -> str:
    (eq, eo, ea), (hq, ho, ha) = easy, hard
    return (f"<caption>{caption}</caption>\n<type>{content_type}</type>\n"
            f"<easy>{eq}\n{format_options(eo)}</easy>\n<easy_answer>{ea}</easy_answer>\n"
            f"<hard>{hq}\n{format_options(ho)}</hard>\n<hard_answer>{ha}</hard_answer>")


def _question(block: str, answer: str, which: str) -> tuple[str, tuple[str, ...], str]:
    lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
    stem = [ln for ln in lines if not _OPTION.match(ln)]
    opts = [_OPTION.match(ln) for ln in lines if _OPTION.match(ln)]
    if not stem:
        raise MalformedOutput(f"{which} question has no stem")
    letters = tuple(o.group(1) for o in opts)
    if letters != LETTERS:
        raise MalformedOutput(f"{which} options must be exactly A-D in order, found {list(letters)}")
    texts = tuple(o.group(2).strip() for o in opts)
    if len({t.lower() for t in texts}) != 4:
        raise MalformedOutput(f"{which} options must be distinct, found {list(texts)}")
    letter = answer.strip().strip("().").upper()
    if letter not in LETTERS:
        raise MalformedOutput(f"{which} answer must be one of A-D, found {answer.strip()!r}")
    return " ".join(stem), texts, letter


def parse_proposer(text: str) -> Proposal:
    """Parse a Proposer completion or raise MalformedOutput saying why."""
    m = _TAGS.search(text or "")
    if not m:
        raise MalformedOutput("missing or misordered tags: need " + ", ".join(f"<{f}>" for f in _FIELDS))
    caption, ctype = m.group("caption").strip(), " ".join(m.group("type").lower().split())
    if not caption:
        raise MalformedOutput("empty caption")
    if not ctype or len(ctype) > 32:
        raise MalformedOutput(f"content type must be a short non-empty label, found {ctype!r}")
    eq, eo, ea = _question(m.group("easy"), m.group("easy_answer"), "easy")
    hq, ho, ha = _question(m.group("hard"), m.group("hard_answer"), "hard")
    if " ".join(eq.lower().split()) == " ".join(hq.lower().split()):
        raise MalformedOutput("the easy and the hard question are the same")
    return Proposal(caption, ctype, eq, eo, ea, hq, ho, ha)


def render_program(reply: str, opts: MMZeroOptions):
    """(kind, program, RenderResult) for a Coder reply; never raises on model text."""
    from retrieval.render import RenderResult, SandboxLimits, extract_program, render_python, render_svg

    kind, program = extract_program(reply)
    if kind is None and "<svg" in reply.lower():
        # an SVG the Coder did not finish (cut at max tokens) is an SVG with a syntax error, not "not SVG"
        kind, program = "svg", reply[reply.lower().index("<svg"):].strip()
    if kind is None:
        return None, "", RenderResult(False, None, "not_svg", "no SVG document or Python program in the reply", 0.0)
    if kind == "python" and not opts.allow_python:
        return kind, program, RenderResult(False, None, "not_svg", "a Python program, but this run renders SVG only", 0.0)
    limits = SandboxLimits(wall_seconds=opts.render_wall_seconds)
    render = render_svg if kind == "svg" else render_python
    return kind, program, render(program, size=opts.render_size, limits=limits)


@dataclass
class SolverScore:
    solvability: float  # share of easy answers equal to the Proposer's easy answer
    c_hard: float  # majority share of the hard answers
    hard_solved: bool  # the Proposer's hard answer appears at least once

    def triple(self) -> tuple[float, float, int]:
        return self.solvability, self.c_hard, int(self.hard_solved)


def score_from_answers(p: Proposal, easy: Sequence[str | None], hard: Sequence[str | None]) -> SolverScore:
    m = max(1, len(easy))
    _, c_hard = majority_vote(hard)
    return SolverScore(sum(a == p.easy_answer for a in easy) / m, c_hard, any(a == p.hard_answer for a in hard))


def solver_scores(solver, renders: Sequence[tuple[Proposal, object]], m: int, max_new_tokens: int, seed: int) -> list[SolverScore]:
    """The Solver's m answers to both questions of every (proposal, image), in one batched call."""
    if not renders:
        return []
    reqs = []
    for p, image in renders:
        reqs.append(GenerationRequest(solver_prompt(p.easy, list(p.easy_options)), [image]))
        reqs.append(GenerationRequest(solver_prompt(p.hard, list(p.hard_options)), [image]))
    _, letters = sample_choices(solver, reqs, m, max_new_tokens=max_new_tokens, seed=seed)
    return [score_from_answers(p, letters[2 * i], letters[2 * i + 1]) for i, (p, _) in enumerate(renders)]


class _Stats:
    def __init__(self, role: str):
        self.role = role
        self.stats = {"completions": 0, "malformed": 0, "programs": 0, "rendered": 0, "solvability_sum": 0.0, "reward_sum": 0.0}

    def summary(self) -> dict:
        s, r = self.stats, self.role
        return {f"{r}_completions": s["completions"], f"{r}_malformed_rate": s["malformed"] / max(1, s["completions"]),
                f"{r}_render_rate": s["rendered"] / max(1, s["programs"]),
                f"{r}_mean_solvability": s["solvability_sum"] / max(1, s["rendered"]),
                f"{r}_mean_reward": s["reward_sum"] / max(1, s["completions"])}


class ProposerReward(_Stats):
    """The Proposer's reward in TRL's contract: each proposal is coded by the (previous) Coder, rendered in the
    sandbox and answered by the (previous) Solver; see `recipes.mmzero_rewards.proposer_rewards`."""

    __name__ = "mmzero_proposer"

    def __init__(self, coder, solver, opts: MMZeroOptions, m: int, vote_tokens: int = 16, seed: int = 0):
        super().__init__("proposer")
        self.coder, self.solver, self.opts, self.m, self.vote_tokens, self.seed = coder, solver, opts, m, vote_tokens, seed

    def __call__(self, completions, **_) -> list[float]:
        parsed: list[Proposal | None] = []
        for c in completions:
            try:
                parsed.append(parse_proposer(completion_text(c)))
            except MalformedOutput:
                parsed.append(None)
        good = [i for i, p in enumerate(parsed) if p is not None]
        self.seed += 1
        k = self.opts.coder_samples
        outs = self.coder.generate([GenerationRequest(coder_prompt(parsed[i].caption, self.opts.render_size)) for i in good],
                                   SamplingParams(n=k, temperature=self.opts.coder_temperature,
                                                  max_new_tokens=self.opts.coder_max_new_tokens, seed=self.seed)) if good else []
        rendered: list[tuple[int, Proposal, object]] = []
        for i, replies in zip(good, outs):
            for reply in replies:
                _, _, res = render_program(reply, self.opts)
                self.stats["programs"] += 1
                if res.ok:
                    rendered.append((i, parsed[i], res.image))
        scores = solver_scores(self.solver, [(p, img) for _, p, img in rendered], self.m, self.vote_tokens, self.seed)
        per_item: dict[int, list] = {i: [] for i in good}
        for (i, _, _), sc in zip(rendered, scores):
            per_item[i].append(sc.triple())
            self.stats["solvability_sum"] += sc.solvability
        items = [None if p is None else {"renders": per_item[i], "content_type": p.content_type, "caption": p.caption,
                                         "easy": p.easy, "hard": p.hard} for i, p in enumerate(parsed)]
        rewards = proposer_rewards(items, self.opts.bleu_threshold)
        self.stats["completions"] += len(completions)
        self.stats["malformed"] += len(completions) - len(good)
        self.stats["rendered"] += len(rendered)
        self.stats["reward_sum"] += sum(rewards)
        return rewards


class CoderReward(_Stats):
    """The Coder's reward in TRL's contract: `reward(completions, proposal, **columns)`; `proposal` is the
    JSON of the Proposer item the program was written for. Render in the sandbox, then the (previous) Solver."""

    __name__ = "mmzero_coder"

    def __init__(self, solver, opts: MMZeroOptions, m: int, vote_tokens: int = 16, seed: int = 0):
        super().__init__("coder")
        self.solver, self.opts, self.m, self.vote_tokens, self.seed = solver, opts, m, vote_tokens, seed

    def __call__(self, completions, proposal, **_) -> list[float]:
        props = [Proposal(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(p).items()}) for p in proposal]
        results = [render_program(completion_text(c), self.opts)[2] for c in completions]
        ok = [i for i, r in enumerate(results) if r.ok]
        self.seed += 1
        scores = dict(zip(ok, solver_scores(self.solver, [(props[i], results[i].image) for i in ok], self.m, self.vote_tokens, self.seed)))
        rewards = []
        for i, r in enumerate(results):
            sc = scores.get(i)
            rewards.append(coder_reward(r.status, sc.solvability, sc.hard_solved) if sc else coder_reward(r.status))
            self.stats["solvability_sum"] += sc.solvability if sc else 0.0
        self.stats["completions"] += len(completions)
        self.stats["programs"] += len(completions)
        self.stats["rendered"] += len(ok)
        self.stats["reward_sum"] += sum(rewards)
        return rewards


def _render_id(partition: str, image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return f"mmzero-{partition}-{hashlib.sha256(buf.getvalue()).hexdigest()[:16]}"



def _vote_params(ctx: IterationContext) -> tuple[int, int]:
    return ctx.config.m, ctx.config.vote_max_new_tokens


def generate_proposals(engine, n: int, temperature: float, max_new_tokens: int, seed: int) -> list[str]:
    """n Proposer texts; the prompt is the same every time, so variety comes from sampling alone."""
    n = n if temperature > 0 else 1  # greedy decoding of one prompt gives one text
    outs = engine.generate([GenerationRequest(PROPOSER_PROMPT)] * n,
                           SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    return [t for (t,) in outs]


@register_recipe("mmzero")
class MMZero(Recipe):
    """Proposer (text) -> Coder (program -> sandboxed render) -> Solver x m on both questions -> Solver GRPO."""

    roles = ("proposer", "coder", "solver")

    def default_config(self, profile: str) -> LoopConfig:
        # band [0.25, 1.0] is the envelope of the two MM-Zero filters (easy c >= 0.5, hard c in [0.25, 0.75]):
        # the task-set check tests kept rows against it; `keep` applies the exact per-question rule
        if profile == "paper":
            # Each role trains ~20 steps per iteration (recipes.md); lr 1e-6, KL 1e-2 from the shared pieces.
            return LoopConfig(
                band_low=0.25, band_high=1.0, images_per_iteration=256, task_maker_images=128, task_max_new_tokens=512,
                solver=GRPOHyperParams(num_generations=5, steps=20, prompts_per_step=16, max_completion_length=1024),
                task_makers={"proposer": GRPOHyperParams(num_generations=4, steps=20, prompts_per_step=16, max_completion_length=512),
                             "coder": GRPOHyperParams(num_generations=4, steps=20, prompts_per_step=16, max_completion_length=1024)},
                recipe_options=asdict(MMZeroOptions(coder_samples=4)),
            )
        if profile == "embedded":
            # As V-Zero's embedded profile: lr 1e-4 for the tiny model, temperature 0.7 keeps its formats readable.
            return LoopConfig(
                band_low=0.25, band_high=1.0, images_per_iteration=128, task_maker_images=16, eval_images=60,
                task_max_new_tokens=160, task_temperature=0.7, engine_batch_size=64,
                solver=GRPOHyperParams(num_generations=5, steps=20, prompts_per_step=8, learning_rate=1e-4, max_completion_length=12, save_steps=5),
                task_makers={
                    "proposer": GRPOHyperParams(num_generations=4, steps=4, prompts_per_step=4, learning_rate=1e-4, temperature=0.7,
                                                max_completion_length=160, save_steps=2),
                    "coder": GRPOHyperParams(num_generations=4, steps=4, prompts_per_step=4, learning_rate=1e-4, temperature=0.7,
                                             max_completion_length=256, save_steps=2),
                },
                recipe_options=asdict(MMZeroOptions(coder_samples=1, coder_temperature=0.7, coder_max_new_tokens=256)),
            )
        if profile == "smoke":
            # Seconds-long: every step runs, nothing is measured. Wide filters keep any majority-labeled question;
            # 24 proposals so that a few render even when the warm start mixes in every recipe's formats;
            # temperature 0.3 keeps a barely warm-started ~1M model's long formats mostly intact (greedy would
            # give one proposal: the Proposer's prompt is always the same).
            return LoopConfig(
                m=4, band_low=0.0, band_high=1.0, images_per_iteration=24, task_maker_images=2, eval_images=4,
                task_max_new_tokens=160, engine_batch_size=16, task_temperature=0.3,
                solver=GRPOHyperParams(num_generations=2, steps=1, prompts_per_step=2, learning_rate=1e-4, max_completion_length=8, save_steps=1),
                task_makers={
                    "proposer": GRPOHyperParams(num_generations=2, steps=1, prompts_per_step=1, learning_rate=1e-4, temperature=0.3,
                                                max_completion_length=160, save_steps=1),
                    "coder": GRPOHyperParams(num_generations=2, steps=1, prompts_per_step=1, learning_rate=1e-4, temperature=0.3,
                                             max_completion_length=256, save_steps=1),
                },
                recipe_options=asdict(MMZeroOptions(coder_samples=1, coder_temperature=0.3, coder_max_new_tokens=256,
                                                    easy_min=0.0, hard_low=0.0, hard_high=1.0)),
            )
        raise ValueError(f"unknown profile {profile!r}; choose 'paper', 'embedded' or 'smoke'")

    # ------------------------------------------------------------------ training the task makers

    def role_training(self, role: str, ctx: IterationContext) -> RoleTraining:
        opts, (m, vote_tokens) = MMZeroOptions.of(ctx.config), _vote_params(ctx)
        solver = ctx.engine(ctx.parents["solver"])
        if role == "proposer":
            rows = [{"prompt": build_messages(PROPOSER_PROMPT, 0)} for _ in range(ctx.config.task_maker_images)]
            reward = ProposerReward(ctx.engine(ctx.parents["coder"]), solver, opts, m, vote_tokens, ctx.config.seed)
        elif role == "coder":
            # captions from this iteration's Proposer (trained just before), its parent if run on its own
            proposer = ctx.engine(ctx.trained.get("proposer", ctx.parents["proposer"]))
            props = self._well_formed(ctx, proposer, ctx.config.task_maker_images)
            rows = [{"prompt": build_messages(coder_prompt(p.caption, opts.render_size), 0), "proposal": json.dumps(asdict(p))}
                    for p in props]
            reward = CoderReward(solver, opts, m, vote_tokens, ctx.config.seed)
        else:
            raise ValueError(f"MM-Zero trains task-maker roles 'proposer' and 'coder', not {role!r}")
        return RoleTraining(rows=rows, reward_funcs=[reward], reward_weights=[1.0], stats=reward.stats)

    def _well_formed(self, ctx: IterationContext, proposer, n: int, attempts: int = 4) -> list[Proposal]:
        out: list[Proposal] = []
        for a in range(attempts):
            for text in generate_proposals(proposer, n, ctx.config.task_temperature or 0.7, ctx.config.task_max_new_tokens,
                                           ctx.config.seed + 1000 * ctx.iteration + a):
                try:
                    out.append(parse_proposer(text))
                except MalformedOutput:
                    pass
            if len(out) >= n:
                return out[:n]
        if not out:
            raise ValueError(f"the Proposer wrote no well-formed item in {attempts * n} tries: the Coder has no captions "
                             "to train on (is the base model warm-started with the MM-Zero formats?)")
        return out

    # ------------------------------------------------------------------ building the task set

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        """Proposer texts -> Coder programs -> sandboxed renders (added to the pool) -> two questions per render."""
        from retrieval.sources.base import ImageRecord

        opts, cfg = MMZeroOptions.of(ctx.config), ctx.config
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
            [GenerationRequest(coder_prompt(parsed[i].caption, opts.render_size)) for i in good],
            SamplingParams(n=1, temperature=cfg.task_temperature, max_new_tokens=opts.coder_max_new_tokens, seed=cfg.seed + ctx.iteration),
        ) if good else []
        program = dict(zip(good, (r for (r,) in replies)))
        proposals: list = []
        records: list[ImageRecord] = []
        for k, (text, p) in enumerate(zip(texts, parsed)):
            if not isinstance(p, Proposal):
                proposals.append(MalformedTask("", text, str(p), meta={"item": k}))
                continue
            kind, prog, res = render_program(program[k], opts)
            meta = {"item": k, "caption": p.caption, "content_type": p.content_type, "proposer_text": text,
                    "program": prog or program[k], "program_kind": kind or "", "render_status": res.status,
                    "render_seconds": round(res.seconds, 3)}
            if not res.ok:
                proposals.append(MalformedTask("", program[k], f"render {res.status}: {res.reason}", kind="render_failed",
                                               meta={**meta, "render_tail": res.stdout_tail[-500:]}))
                continue
            image_id = _render_id(ctx.partition, res.image)
            records.append(ImageRecord(id=image_id, source=RENDER_SOURCE, image=res.image, caption=p.caption, difficulty=0,
                                       meta={"kind": "", "iteration": ctx.iteration, "partition": ctx.partition,
                                             "content_type": p.content_type, "program_kind": kind, "program": prog}))
            for which, q, o, a in (("easy", p.easy, p.easy_options, p.easy_answer), ("hard", p.hard, p.hard_options, p.hard_answer)):
                proposals.append(ProposedTask(image_id, q, list(o), {**meta, "question_kind": which, "answer": a, "raw": text}))
        if records:
            ctx.pool.add(records)  # rendered images join the pool: the Solver, checks and lineage resolve them by id
        return proposals

    def keep(self, cfg: LoopConfig):
        """Easy: c >= easy_min. Hard: c in [hard_low, hard_high] and its render's easy question passed.

        The loop calls this in proposal order, and each render's easy question comes
        right before its hard one, so the easy verdict is known when the hard one is decided.
        """
        opts = MMZeroOptions.of(cfg)
        easy_passed: dict[int, bool] = {}

        def decide(row: dict) -> str:
            meta = row["meta"]
            if meta.get("question_kind") == "easy":
                easy_passed[meta["item"]] = row["c"] >= opts.easy_min
                return "kept" if easy_passed[meta["item"]] else "too_hard"
            if not easy_passed.get(meta.get("item"), False):
                return "easy_failed"
            return band_reason(row["c"], opts.hard_low, opts.hard_high)

        return decide

    def task_set_metadata(self, df, ctx) -> dict:
        from recipes.mmzero_audit import curriculum_audit

        return curriculum_audit(df, ctx.pool, MMZeroOptions.of(ctx.config))

    # ------------------------------------------------------------------ warm start

    def bootstrap_examples(self, world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
        """Templated Proposer items and Coder SVG programs from every third world scene with a short SVG (few, next to V-Zero's)."""
        from retrieval.world.svg import scene_svg
        from retrieval.world.tasks import make_tasks

        out: list[SupervisedExample] = []
        for wi in list(world_images)[::3]:
            svg = scene_svg(wi)
            tasks = make_tasks(wi, rng)
            # long documents are beyond a tiny model's reach, and every long example pads its whole warm-start batch
            if len(svg) > 400 or len(tasks) < 2:
                continue
            easy, hard = tasks[0], rng.choice([t for t in tasks[1:] if t.question != tasks[0].question] or tasks[1:])
            target = proposer_target(wi.caption, wi.kind, (easy.question, list(easy.options), easy.answer),
                                     (hard.question, list(hard.options), hard.answer))
            out.append(SupervisedExample(PROPOSER_PROMPT, target, [], task_type="mmzero_proposer"))
            out.append(SupervisedExample(coder_prompt(wi.caption, wi.image.width), svg, [], task_type="mmzero_coder"))
        return out
