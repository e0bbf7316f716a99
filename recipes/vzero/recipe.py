"""The V-Zero recipe: the Questioner asks about pool images, the Solver learns from its own majority votes.

Order per iteration: the Questioner trains with GRPO on the dual-track reward
(each of its questions is voted on by the previous Solver), then writes one
question per sampled pool image; the previous Solver answers each m times;
questions with c in the consistency band train the Solver (the shared loop).

    recipe = get_recipe("vzero")
    cfg = recipe.default_config("smoke")
"""

from __future__ import annotations

from models.generation import build_messages
from recipes.core.context import IterationContext
from recipes.core.questioner import QUESTIONER_PROMPT, ask, question_tasks, questioner_examples
from recipes.core.recipe import Recipe
from recipes.core.registry import register_recipe
from recipes.core.types import RoleTraining
from recipes.vzero.config import PROFILES, VZeroConfig
from recipes.vzero.rewards import QuestionerReward


@register_recipe("vzero")
class VZero(Recipe):
    """Questioner -> Solver x m -> majority label and c -> band filter -> Solver GRPO."""

    roles = ("questioner", "solver")
    config_class = VZeroConfig
    profiles = PROFILES
    description = "V-Zero: a Questioner asks about unlabeled images; the Solver learns from its own majority votes."

    def warm_start_formats(self):
        return {"questioner": questioner_examples}

    def role_training(self, role: str, ctx: IterationContext) -> RoleTraining:
        if role != "questioner":
            raise ValueError(f"V-Zero trains task-maker role 'questioner', not {role!r}")
        ids = ctx.sample_image_ids(ctx.config.task_maker_images, "questioner-train")
        rows = [{"prompt": build_messages(QUESTIONER_PROMPT, 1), "image": ctx.image(i), "image_id": i} for i in ids]
        reward = QuestionerReward(ctx.engine(ctx.parents["solver"]), ctx.config.m, ctx.config.vote_max_new_tokens, ctx.config.seed)
        return RoleTraining(rows=rows, reward_funcs=[reward], reward_weights=[1.0], stats=reward.stats)

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        cfg = ctx.config
        ids = ctx.sample_image_ids(cfg.images_per_iteration, "tasks")
        texts = ask(makers["questioner"], [ctx.image(i) for i in ids], cfg.task_temperature, cfg.task_max_new_tokens,
                    cfg.seed + ctx.iteration)
        return question_tasks(ids, texts)
