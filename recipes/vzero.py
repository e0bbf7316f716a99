"""V-Zero: a Questioner and a Solver on unlabeled images (recipes.md, "V-Zero").

The Questioner sees an image and writes a short description, a 4-option
multiple-choice question and its own immediate ("intuitive") answer; the
Solver answers the question m times and the majority answer becomes the
pseudo-label. This module holds the Questioner's prompt, its output format and
parser, and the templated bootstrap examples that teach the format in the warm
start. The loop hooks (task building, rewards) build on these.

Questioner output format (tags keep parsing unambiguous for a tiny model):

    <description>two shapes: a red circle and a blue square</description>
    <question>What color is the circle?
    A. red
    B. blue
    C. green
    D. yellow</question>
    <answer>A</answer>
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.formats import LETTERS, format_options
from models.generation import GenerationRequest, SamplingParams, build_messages
from models.grpo import GRPOHyperParams
from models.warmstart import SupervisedExample
from recipes.base import Recipe, RoleTraining, register_recipe
from recipes.loop import IterationContext, LoopConfig, MalformedTask, ProposedTask, solver_request
from recipes.rewards import MALFORMED, completion_text, dual_track
from recipes.voting import majority_vote, sample_choices

QUESTIONER_PROMPT = (
    "Describe the image briefly, then write a question about it with four options A-D, "
    "then give your immediate answer."
)

_TAGS = re.compile(
    r"<description>(?P<description>.*?)</description>\s*"
    r"<question>(?P<question>.*?)</question>\s*"
    r"<answer>(?P<answer>.*?)</answer>",
    re.DOTALL,
)
_OPTION = re.compile(r"^([A-Z])\.\s*(.+)$")


@dataclass(frozen=True)
class QuestionerOutput:
    description: str
    question: str
    options: tuple[str, str, str, str]
    fast_answer: str  # the Questioner's intuitive answer, a letter A-D


class MalformedOutput(ValueError):
    """Questioner text that does not follow the format; the message says what is wrong."""


def questioner_target(description: str, question: str, options: list[str], letter: str) -> str:
    return (
        f"<description>{description}</description>\n"
        f"<question>{question}\n{format_options(options)}</question>\n"
        f"<answer>{letter}</answer>"
    )


def parse_questioner(text: str) -> QuestionerOutput:
    """Parse a Questioner completion or raise MalformedOutput saying why.

    Well-formed means: all three tags, a non-empty question stem, exactly four
    options labelled A, B, C, D in order with distinct non-empty texts, and an
    answer that is one of those letters.
    """
    m = _TAGS.search(text or "")
    if not m:
        raise MalformedOutput("missing <description>, <question> or <answer> tags")
    lines = [ln.strip() for ln in m.group("question").strip().splitlines() if ln.strip()]
    stem = [ln for ln in lines if not _OPTION.match(ln)]
    opts = [_OPTION.match(ln) for ln in lines if _OPTION.match(ln)]
    if not stem:
        raise MalformedOutput("question has no stem")
    letters = tuple(o.group(1) for o in opts)
    if letters != LETTERS:
        raise MalformedOutput(f"options must be exactly A-D in order, found {list(letters)}")
    texts = tuple(o.group(2).strip() for o in opts)
    if len(set(t.lower() for t in texts)) != 4:
        raise MalformedOutput(f"options must be distinct, found {list(texts)}")
    answer = m.group("answer").strip().strip("().").upper()
    if answer not in LETTERS:
        raise MalformedOutput(f"answer must be one of A-D, found {m.group('answer').strip()!r}")
    description = m.group("description").strip()
    if not description:
        raise MalformedOutput("empty description")
    return QuestionerOutput(description, " ".join(stem), texts, answer)  # type: ignore[arg-type]


class QuestionerReward:
    """V-Zero's dual-track reward, computed by asking the (previous) Solver m times per generated question.

    TRL contract: `reward(completions, image, **columns) -> list[float]`.
    Malformed output scores -1; a well-formed question scores
    `dual_track(a_fast, majority, c)`. All completions of a step are voted
    on in one batched generation call. Running tallies (malformed share,
    mean c) are kept in `stats` for the checkpoint's metadata.
    """

    __name__ = "vzero_dual_track"

    def __init__(self, solver_engine, m: int, max_new_tokens: int = 16, seed: int = 0):
        self.solver = solver_engine
        self.m = m
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.stats = {"completions": 0, "malformed": 0, "c_sum": 0.0, "voted": 0, "agree_fast": 0}

    def __call__(self, completions, image, **_) -> list[float]:
        from models.formats import solver_prompt

        parsed: list[QuestionerOutput | None] = []
        for c in completions:
            try:
                parsed.append(parse_questioner(completion_text(c)))
            except MalformedOutput:
                parsed.append(None)
        idx = [i for i, p in enumerate(parsed) if p is not None]
        rewards = [MALFORMED] * len(completions)
        self.stats["completions"] += len(completions)
        self.stats["malformed"] += len(completions) - len(idx)
        if idx:
            requests = [GenerationRequest(solver_prompt(parsed[i].question, list(parsed[i].options)), [image[i]]) for i in idx]
            self.seed += 1
            _, letters = sample_choices(self.solver, requests, self.m, max_new_tokens=self.max_new_tokens, seed=self.seed)
            for i, answers in zip(idx, letters):
                label, c = majority_vote(answers)
                rewards[i] = dual_track(parsed[i].fast_answer, label, c)
                self.stats["voted"] += 1
                self.stats["c_sum"] += c
                self.stats["agree_fast"] += int(label == parsed[i].fast_answer)
        return rewards

    def summary(self) -> dict:
        n, v = max(1, self.stats["completions"]), max(1, self.stats["voted"])
        return {
            "questioner_completions": self.stats["completions"],
            "questioner_malformed_rate": self.stats["malformed"] / n,
            "questioner_mean_c": self.stats["c_sum"] / v,
            "solver_agrees_with_fast_answer": self.stats["agree_fast"] / v,
        }


@register_recipe("vzero")
class VZero(Recipe):
    """Questioner -> Solver x m -> majority label and c -> band filter -> Solver GRPO."""

    roles = ("questioner", "solver")

    def default_config(self, profile: str) -> LoopConfig:
        if profile == "paper":
            # V-Zero's released scripts: Questioner n = 4, Solver n = 5; lr 1e-6, KL 1e-2.
            return LoopConfig(
                solver=GRPOHyperParams(num_generations=5, steps=30, prompts_per_step=16, max_completion_length=1024),
                task_makers={"questioner": GRPOHyperParams(num_generations=4, steps=10, prompts_per_step=16, max_completion_length=512)},
            )
        if profile == "embedded":
            # The tiny model needs a far larger learning rate (1e-4; 5e-4 collapsed in probes) and short completions.
            return LoopConfig(
                # ~half of a tiny Questioner's questions are malformed at first: ask on enough images that
                # the Solver sees each kept task about once or twice, not five times
                images_per_iteration=256,
                task_maker_images=32,
                # ~220 held-out questions: +-6.5 points at 95%; each model costs greedy + m samples per question
                eval_images=60,
                task_max_new_tokens=128,
                # a few-million-parameter model loses the format at temperature 1.0; 0.7 keeps most questions parseable
                task_temperature=0.7,
                engine_batch_size=64,
                solver=GRPOHyperParams(num_generations=5, steps=20, prompts_per_step=8, learning_rate=1e-4, max_completion_length=12, save_steps=5),
                task_makers={"questioner": GRPOHyperParams(num_generations=4, steps=6, prompts_per_step=4, learning_rate=1e-4, temperature=0.7,
                                                           max_completion_length=128, save_steps=3)},
            )
        if profile == "smoke":
            # Seconds-long iteration for tests and install checks: it exercises every step and measures
            # nothing. Greedy questions and a [0, 1] band keep any majority-labeled task, so a barely
            # warm-started ~1M model still yields a task set (band logic is unit-tested on its own).
            return LoopConfig(
                m=4, band_low=0.0, band_high=1.0, images_per_iteration=8, task_maker_images=4, eval_images=4,
                task_max_new_tokens=96, engine_batch_size=16, task_temperature=0.0,
                solver=GRPOHyperParams(num_generations=2, steps=2, prompts_per_step=2, learning_rate=1e-4, max_completion_length=8, save_steps=1),
                task_makers={"questioner": GRPOHyperParams(num_generations=2, steps=1, prompts_per_step=2, learning_rate=1e-4, temperature=0.3,
                                                           max_completion_length=96, save_steps=1)},
            )
        raise ValueError(f"unknown profile {profile!r}; choose 'paper', 'embedded' or 'smoke'")

    def role_training(self, role: str, ctx: IterationContext) -> RoleTraining:
        if role != "questioner":
            raise ValueError(f"V-Zero trains task-maker role 'questioner', not {role!r}")
        ids = ctx.sample_image_ids(ctx.config.task_maker_images, "questioner-train")
        rows = [{"prompt": build_messages(QUESTIONER_PROMPT, 1), "image": ctx.pool.get_image(i), "image_id": i} for i in ids]
        reward = QuestionerReward(ctx.engine(ctx.parents["solver"]), ctx.config.m, ctx.config.vote_max_new_tokens, ctx.config.seed)
        return RoleTraining(rows=rows, reward_funcs=[reward], reward_weights=[1.0], stats=reward.stats)

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        ids = ctx.sample_image_ids(ctx.config.images_per_iteration, "tasks")
        requests = [GenerationRequest(QUESTIONER_PROMPT, [ctx.pool.get_image(i)]) for i in ids]
        params = SamplingParams(n=1, temperature=ctx.config.task_temperature, max_new_tokens=ctx.config.task_max_new_tokens,
                                seed=ctx.config.seed + ctx.iteration)
        outs = makers["questioner"].generate(requests, params)
        proposals: list = []
        for image_id, (text,) in zip(ids, outs):
            try:
                q = parse_questioner(text)
            except MalformedOutput as err:
                proposals.append(MalformedTask(image_id, text, str(err)))
                continue
            proposals.append(ProposedTask(image_id, q.question, list(q.options),
                                          {"a_fast": q.fast_answer, "description": q.description, "raw": text}))
        return proposals

    def bootstrap_examples(self, world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
        from retrieval.world.tasks import make_tasks

        out: list[SupervisedExample] = []
        for wi in world_images:
            tasks = make_tasks(wi, rng)
            if not tasks:
                continue
            t = rng.choice(tasks)
            target = questioner_target(wi.caption, t.question, list(t.options), t.answer)
            out.append(SupervisedExample(QUESTIONER_PROMPT, target, [wi.image], task_type="vzero_questioner"))
        return out

