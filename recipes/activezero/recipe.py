"""The Active-Zero recipes: the Searcher fetches frontier images; the passive control draws them uniformly.

One iteration trains, in this order: the Searcher (its query is searched in
the pool with the `embedder` asset's open_clip model; the previous
Questioner asks about the image it fetched and the previous Solver answers m
times), the Questioner (on images the just-trained Searcher retrieves), then
the Solver (shared loop, with DAPO's asymmetric clip 0.2 / 0.28 and
zero-variance groups dropped), then evaluation. The Questioner writes the
shared Questioner format (`recipes.core.questioner`); its fast answer is
parsed but not rewarded.

`activezero_passive` is the same recipe without the Searcher: images are
drawn uniformly from the same pool; everything else is identical, so the two
compare the value of searching (bench/frontier.py).
"""

from __future__ import annotations

from models.generation import GenerationRequest, SamplingParams, build_messages
from recipes.activezero.config import PROFILES, ActiveZeroConfig, passive_profiles
from recipes.activezero.report import curriculum_metadata
from recipes.activezero.rewards import QuestionerReward, SearcherReward
from recipes.activezero.search import SEARCHER_PROMPT, Search, run_searches, searcher_examples, searcher_format
from recipes.core.context import IterationContext
from recipes.core.questioner import QUESTIONER_PROMPT, ask, question_tasks, questioner_examples
from recipes.core.recipe import Recipe
from recipes.core.registry import register_recipe
from recipes.core.types import MalformedTask, RoleTraining


@register_recipe("activezero")
class ActiveZero(Recipe):
    """Searcher -> pool search -> Questioner -> Solver x m -> band filter -> Solver GRPO (DAPO settings)."""

    roles = ("searcher", "questioner", "solver")
    requires = ("embedder",)  # searches need the pool's embedder and image vectors
    config_class = ActiveZeroConfig
    profiles = PROFILES
    description = "Active-Zero: a Searcher fetches images at the Solver's frontier from the pool; a Questioner asks."

    def warm_start_formats(self):
        return {"questioner": questioner_examples, "searcher": searcher_examples}

    # -- image choice: what differs from the passive variant --------------------------------------
    def searches(self, ctx: IterationContext, searcher, n: int, salt: str) -> list[Search]:
        """n Searcher completions (sampled at the Searcher's temperature: queries must differ) and their images."""
        hp = ctx.config.role_hp("searcher")
        params = SamplingParams(n=n, temperature=max(hp.temperature, 0.1), max_new_tokens=hp.max_completion_length,
                                seed=ctx.config.seed + ctx.iteration)
        (texts,) = searcher.generate([GenerationRequest(SEARCHER_PROMPT, [])], params)
        return run_searches(ctx.pool, ctx.pool.load_embedder(ctx.device), texts, ctx.rng(salt), ctx.image)

    def training_images(self, ctx: IterationContext) -> list[str]:
        """The Questioner trains on images this iteration's Searcher fetches (the parent's, if it is not trained yet)."""
        searcher = ctx.engine(ctx.trained.get("searcher") or ctx.parents["searcher"])
        found = [s.image_id for s in self.searches(ctx, searcher, ctx.config.task_maker_images, "questioner-train") if s.image_id]
        return found or ctx.sample_image_ids(ctx.config.task_maker_images, "questioner-train")

    # -- loop hooks -------------------------------------------------------------------------------
    def role_training(self, role: str, ctx: IterationContext) -> RoleTraining:
        if role == "searcher":
            rows = [{"prompt": build_messages(SEARCHER_PROMPT, 0), "slot": i} for i in range(ctx.config.task_maker_images)]
            reward = SearcherReward(ctx, ctx.engine(ctx.parents["questioner"]), ctx.engine(ctx.parents["solver"]),
                                    ctx.pool.load_embedder(ctx.device))
        elif role == "questioner":
            rows = [{"prompt": build_messages(QUESTIONER_PROMPT, 1), "image": ctx.image(i), "image_id": i}
                    for i in self.training_images(ctx)]
            reward = QuestionerReward(ctx, ctx.engine(ctx.parents["solver"]))
        else:
            raise ValueError(f"{self.name} trains task-maker roles {self.task_makers}, not {role!r}")
        return RoleTraining(rows=rows, reward_funcs=[reward], reward_weights=[1.0], stats=reward.stats)

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        cfg = ctx.config
        searches = self.searches(ctx, makers["searcher"], cfg.images_per_iteration, "tasks")
        found = [s for s in searches if s.image_id]
        texts = ask(makers["questioner"], [ctx.image(s.image_id) for s in found], cfg.task_temperature, cfg.task_max_new_tokens,
                    cfg.seed + ctx.iteration)
        metas = [{"query": s.parsed.query, "query_type": s.parsed.query_type, "rank": s.rank, "similarity": s.similarity,
                  "searcher_format": searcher_format(s.parsed), "image_cluster_share": s.image_share,
                  "query_cluster_share": s.query_share, "searcher_raw": s.raw} for s in found]
        proposals = [MalformedTask("", s.raw, f"searcher: {s.error}") for s in searches if not s.image_id]
        if found:
            ctx.pool.mark_seen(ctx.pool.load_embedder(ctx.device), [s.image_id for s in found], ctx.iteration)
        return proposals + question_tasks([s.image_id for s in found], texts, metas, prefix="questioner: ")

    def task_set_metadata(self, df, ctx: IterationContext) -> dict:
        """The curriculum a team inspects: what the Searcher looked for, what it got, and the rewards."""
        return curriculum_metadata(df, ctx.image, searched=True)


@register_recipe("activezero_passive")
class ActiveZeroPassive(ActiveZero):
    """Active-Zero without the Searcher: images drawn uniformly from the same pool (the comparison baseline)."""

    roles = ("questioner", "solver")
    requires = ()
    profiles = passive_profiles()
    description = "Active-Zero's passive control: the same loop with uniformly drawn images instead of a Searcher."

    def warm_start_formats(self):
        return {"questioner": questioner_examples}

    def training_images(self, ctx: IterationContext) -> list[str]:
        return ctx.sample_image_ids(ctx.config.task_maker_images, "questioner-train")

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        cfg = ctx.config
        ids = ctx.sample_image_ids(cfg.images_per_iteration, "tasks")
        texts = ask(makers["questioner"], [ctx.image(i) for i in ids], cfg.task_temperature, cfg.task_max_new_tokens,
                    cfg.seed + ctx.iteration)
        return question_tasks(ids, texts, prefix="questioner: ")

    def task_set_metadata(self, df, ctx: IterationContext) -> dict:
        return curriculum_metadata(df, ctx.image, searched=False)
