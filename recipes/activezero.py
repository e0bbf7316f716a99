"""Active-Zero: a Searcher fetches images at the Solver's frontier, a Questioner asks, the Solver learns.

recipes.md, "Active-Zero". One iteration trains, in this order: the Searcher
(it writes `<type>...</type><query>...</query>`; the query is embedded with
the pool's open_clip text tower and searched among the pool's image
embeddings; one of the top 5 is taken at random; the previous Questioner asks
about it and the previous Solver answers m times), the Questioner (on images
the just-trained Searcher retrieves), then the Solver (shared loop, with
DAPO's asymmetric clip 0.2 / 0.28 and zero-variance groups dropped), then
evaluation. The Questioner writes V-Zero's format (`recipes.vzero`), which
the warm start already teaches; its fast answer is parsed but not rewarded.

Rewards (scalar formulas are plain functions, table-tested against recipes.md):

    searcher   = 0.9 * min(c, 1 - c) + 0.1 * format - image_cluster_share - query_cluster_share
    questioner = 0.9 * min(c, 1 - c) + 0.1 * format - bleu_cluster_share
    malformed output (missing tags, empty query) = -1

`activezero_passive` is the same recipe without the Searcher: images are
drawn uniformly from the same pool; everything else is identical, so the two
compare the value of searching (bench/frontier.py).

The pool's embedder comes from `ImagePool.load_embedder()`: the `embedder`
asset records it next to the pool after embedding every image.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.generation import GenerationRequest, SamplingParams, build_messages
from models.grpo import GRPOHyperParams
from models.warmstart import SupervisedExample
from recipes.base import Recipe, RoleTraining, register_recipe
from recipes.diversity import image_cluster_shares, text_cluster_shares
from recipes.loop import IterationContext, LoopConfig, MalformedTask, ProposedTask
from recipes.rewards import MALFORMED, completion_text, uncertainty
from recipes.voting import majority_vote, sample_choices
from recipes.vzero import QUESTIONER_PROMPT, MalformedOutput, QuestionerOutput, parse_questioner

SEARCHER_PROMPT = (
    "Find a picture in the image pool to learn from. Name its type (shapes, charts, grids or photo), "
    "then write a search query describing it."
)
QUERY_TYPES = ("shapes", "charts", "grids", "photo")
TOP_K = 5  # the Searcher's image is drawn from the top 5 hits
_SEARCH = re.compile(r"<type>(?P<type>.*?)</type>\s*<query>(?P<query>.*?)</query>", re.DOTALL)


# ---------------------------------------------------------------------------- formats and rewards


@dataclass(frozen=True)
class SearcherOutput:
    query_type: str
    query: str


def searcher_target(query_type: str, query: str) -> str:
    return f"<type>{query_type}</type>\n<query>{query}</query>"


def parse_searcher(text: str) -> SearcherOutput:
    """Parse a Searcher completion or raise MalformedOutput saying why (missing tags, empty type or query)."""
    m = _SEARCH.search(text or "")
    if not m:
        raise MalformedOutput("missing <type> or <query> tags")
    query_type = " ".join(m.group("type").split()).lower()
    query = " ".join(m.group("query").split())
    if not query:
        raise MalformedOutput("empty query")
    if not query_type:
        raise MalformedOutput("empty type")
    return SearcherOutput(query_type, query)


def searcher_format(out: SearcherOutput) -> float:
    """1 when the type is one the pool has (a well-formed query of another type still searches, for 0)."""
    return 1.0 if out.query_type in QUERY_TYPES else 0.0


def searcher_reward(c: float | None, fmt: float, image_share: float, query_share: float) -> float:
    """0.9 * min(c, 1-c) + 0.1 * format - image cluster share - query cluster share.

    `c` is None when the retrieved image got no usable question (the Questioner's output was malformed, or
    no majority): the image taught nothing, so the uncertainty term is 0.
    """
    u = 0.0 if c is None else uncertainty(c)
    return 0.9 * u + 0.1 * fmt - image_share - query_share


def questioner_reward(c: float | None, fmt: float, bleu_share: float) -> float:
    """0.9 * min(c, 1-c) + 0.1 * format - BLEU cluster share (c None: no majority, uncertainty 0)."""
    u = 0.0 if c is None else uncertainty(c)
    return 0.9 * u + 0.1 * fmt - bleu_share


def question_text(q: QuestionerOutput) -> str:
    """What BLEU compares: the stem and its options (two questions differing only in options are different)."""
    return " ".join([q.question, *q.options])


# ---------------------------------------------------------------------------- search -> ask -> vote


def vote(solver, questions: Sequence[QuestionerOutput], images: Sequence, m: int, max_new_tokens: int, seed: int) -> list[tuple]:
    """(majority letter or None, c) per question: the Solver answers each m times."""
    from models.formats import solver_prompt

    if not questions:
        return []
    requests = [GenerationRequest(solver_prompt(q.question, list(q.options)), [im]) for q, im in zip(questions, images)]
    _, letters = sample_choices(solver, requests, m, max_new_tokens=max_new_tokens, seed=seed)
    return [majority_vote(a) for a in letters]


@dataclass
class Search:
    """One Searcher completion and what it fetched: parsed query (or error), image, rank and similarity."""

    raw: str
    parsed: SearcherOutput | None
    error: str = ""
    image_id: str = ""
    rank: int = -1
    similarity: float = 0.0
    image_share: float = 0.0
    query_share: float = 0.0


def run_searches(pool, embedder, texts: Sequence[str], rng: random.Random, k: int = TOP_K) -> list[Search]:
    """Parse each Searcher text, search its query, take one of the top k at random, and compute both cluster shares.

    Shares are over the well-formed queries of this batch: image clusters by embedding cosine distance < 0.1,
    query clusters by BLEU distance < 0.5 within a query type.
    """
    out: list[Search] = []
    for text in texts:
        try:
            s = Search(text, parse_searcher(text))
        except MalformedOutput as err:
            out.append(Search(text, None, str(err)))
            continue
        hits = pool.search_text(embedder, s.parsed.query, k=k)
        if not hits:
            s.error = "no image found"
        else:
            s.rank = rng.randrange(len(hits))
            s.image_id, s.similarity = hits[s.rank][0], float(hits[s.rank][1])
        out.append(s)
    found = [s for s in out if s.image_id]
    if found:
        vecs = embedder.embed_images([pool.get_image(s.image_id) for s in found])
        for s, share in zip(found, image_cluster_shares(vecs)):
            s.image_share = share
        shares = text_cluster_shares([s.parsed.query for s in found], groups=[s.parsed.query_type for s in found])
        for s, share in zip(found, shares):
            s.query_share = share
    return out


def ask(questioner, pool, image_ids: Sequence[str], temperature: float, max_new_tokens: int, seed: int) -> list[str]:
    """One Questioner completion per image."""
    if not image_ids:
        return []
    requests = [GenerationRequest(QUESTIONER_PROMPT, [pool.get_image(i)]) for i in image_ids]
    params = SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    return [outs[0] for outs in questioner.generate(requests, params)]


def _parse_all(texts: Sequence[str]) -> list[QuestionerOutput | None]:
    out = []
    for t in texts:
        try:
            out.append(parse_questioner(t))
        except MalformedOutput:
            out.append(None)
    return out


class SearcherReward:
    """Active-Zero's Searcher reward in TRL's contract: `reward(completions, **columns) -> list[float]`.

    Each completion's query is searched in the pool; the previous Questioner asks about the image it
    fetched and the previous Solver answers m times. Running tallies go to `stats` / `summary()`.
    """

    __name__ = "activezero_searcher"

    def __init__(self, ctx: IterationContext, questioner, solver, embedder):
        self.ctx, self.questioner, self.solver, self.embedder = ctx, questioner, solver, embedder
        self.rng = ctx.rng("searcher-reward")
        self.seed = ctx.config.seed
        self.stats = {"completions": 0, "malformed": 0, "asked": 0, "voted": 0, "c_sum": 0.0, "image_share_sum": 0.0,
                      "query_share_sum": 0.0, "found": 0}

    def __call__(self, completions, **_) -> list[float]:
        cfg = self.ctx.config
        searches = run_searches(self.ctx.pool, self.embedder, [completion_text(c) for c in completions], self.rng)
        found = [s for s in searches if s.image_id]
        self.seed += 1
        questions = _parse_all(ask(self.questioner, self.ctx.pool, [s.image_id for s in found], cfg.task_temperature,
                                   cfg.task_max_new_tokens, self.seed))
        asked = [(s, q) for s, q in zip(found, questions) if q is not None]
        votes = vote(self.solver, [q for _, q in asked], [self.ctx.pool.get_image(s.image_id) for s, _ in asked],
                     cfg.m, cfg.vote_max_new_tokens, self.seed)
        c_of = {id(s): (c if label is not None else None) for (s, _), (label, c) in zip(asked, votes)}
        rewards = []
        for s in searches:
            if s.parsed is None:
                rewards.append(MALFORMED)
                continue
            rewards.append(searcher_reward(c_of.get(id(s)), searcher_format(s.parsed), s.image_share, s.query_share))
        st = self.stats
        st["completions"] += len(searches)
        st["malformed"] += sum(s.parsed is None for s in searches)
        st["found"] += len(found)
        st["asked"] += len(asked)
        st["voted"] += sum(label is not None for label, _ in votes)
        st["c_sum"] += sum(c for label, c in votes if label is not None)
        st["image_share_sum"] += sum(s.image_share for s in found)
        st["query_share_sum"] += sum(s.query_share for s in found)
        return rewards

    def summary(self) -> dict:
        st = self.stats
        n, f, v = max(1, st["completions"]), max(1, st["found"]), max(1, st["voted"])
        return {"searcher_completions": st["completions"], "searcher_malformed_rate": st["malformed"] / n,
                "searcher_question_rate": st["asked"] / f, "searcher_mean_c": st["c_sum"] / v,
                "searcher_image_cluster_share": st["image_share_sum"] / f,
                "searcher_query_cluster_share": st["query_share_sum"] / f}


class QuestionerReward:
    """Active-Zero's Questioner reward in TRL's contract: `reward(completions, image, **columns) -> list[float]`."""

    __name__ = "activezero_questioner"

    def __init__(self, ctx: IterationContext, solver):
        self.ctx, self.solver, self.seed = ctx, solver, ctx.config.seed
        self.stats = {"completions": 0, "malformed": 0, "voted": 0, "c_sum": 0.0, "bleu_share_sum": 0.0}

    def __call__(self, completions, image, **_) -> list[float]:
        cfg = self.ctx.config
        parsed = _parse_all([completion_text(c) for c in completions])
        idx = [i for i, q in enumerate(parsed) if q is not None]
        self.seed += 1
        votes = vote(self.solver, [parsed[i] for i in idx], [image[i] for i in idx], cfg.m, cfg.vote_max_new_tokens, self.seed)
        shares = text_cluster_shares([question_text(parsed[i]) for i in idx])
        rewards = [MALFORMED] * len(completions)
        for i, (label, c), share in zip(idx, votes, shares):
            rewards[i] = questioner_reward(c if label is not None else None, 1.0, share)
        st = self.stats
        st["completions"] += len(completions)
        st["malformed"] += len(completions) - len(idx)
        st["voted"] += sum(label is not None for label, _ in votes)
        st["c_sum"] += sum(c for label, c in votes if label is not None)
        st["bleu_share_sum"] += sum(shares)
        return rewards

    def summary(self) -> dict:
        st = self.stats
        n, v = max(1, st["completions"]), max(1, st["voted"])
        return {"questioner_completions": st["completions"], "questioner_malformed_rate": st["malformed"] / n,
                "questioner_mean_c": st["c_sum"] / v,
                "questioner_bleu_cluster_share": st["bleu_share_sum"] / max(1, n - st["malformed"])}


# ---------------------------------------------------------------------------- the recipes


def _profile(profile: str) -> LoopConfig:
    """V-Zero's profiles plus the Searcher; the Solver gets DAPO's clip and zero-variance-group dropping."""
    from recipes.vzero import VZero

    cfg = VZero().default_config(profile)
    q = cfg.task_makers["questioner"]
    if profile == "paper":
        # Active-Zero: Searcher 10 steps -> Questioner 10 -> Solver 30 per iteration.
        searcher = GRPOHyperParams(num_generations=4, steps=10, prompts_per_step=16, max_completion_length=128)
    elif profile == "embedded":
        searcher = GRPOHyperParams(num_generations=4, steps=6, prompts_per_step=4, learning_rate=1e-4, temperature=1.0,
                                   max_completion_length=48, save_steps=3)
    else:  # smoke
        # a barely warm-started model loses the query format at temperature 1; 0.5 keeps most queries parseable
        searcher = GRPOHyperParams(num_generations=2, steps=1, prompts_per_step=2, learning_rate=1e-4, temperature=0.5,
                                   max_completion_length=48, save_steps=1)
    cfg.task_makers = {"searcher": searcher, "questioner": q}
    s = cfg.solver
    s.epsilon, s.epsilon_high, s.loss_type, s.drop_zero_std_groups = 0.2, 0.28, "dapo", True
    return cfg


def _question_tasks(image_ids: Sequence[str], texts: Sequence[str], metas: Sequence[dict]) -> list:
    proposals: list = []
    for image_id, text, meta in zip(image_ids, texts, metas):
        try:
            q = parse_questioner(text)
        except MalformedOutput as err:
            proposals.append(MalformedTask(image_id, text, f"questioner: {err}", meta))
            continue
        proposals.append(ProposedTask(image_id, q.question, list(q.options),
                                      {**meta, "a_fast": q.fast_answer, "description": q.description, "raw": text}))
    return proposals


@register_recipe("activezero")
class ActiveZero(Recipe):
    """Searcher -> pool search -> Questioner -> Solver x m -> band filter -> Solver GRPO (DAPO settings)."""

    roles = ("searcher", "questioner", "solver")
    requires = ("embedder",)  # searches need the pool's embedder and image vectors

    def default_config(self, profile: str) -> LoopConfig:
        return _profile(profile)

    # -- image choice: what differs from the passive variant --------------------------------------
    def searches(self, ctx: IterationContext, searcher, n: int, salt: str) -> list[Search]:
        """n Searcher completions (sampled at the Searcher's temperature: queries must differ) and their images."""
        hp = ctx.config.role_hp("searcher")
        params = SamplingParams(n=n, temperature=max(hp.temperature, 0.1), max_new_tokens=hp.max_completion_length,
                                seed=ctx.config.seed + ctx.iteration)
        (texts,) = searcher.generate([GenerationRequest(SEARCHER_PROMPT, [])], params)
        return run_searches(ctx.pool, ctx.pool.load_embedder(ctx.device), texts, ctx.rng(salt))

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
            rows = [{"prompt": build_messages(QUESTIONER_PROMPT, 1), "image": ctx.pool.get_image(i), "image_id": i}
                    for i in self.training_images(ctx)]
            reward = QuestionerReward(ctx, ctx.engine(ctx.parents["solver"]))
        else:
            raise ValueError(f"{self.name} trains task-maker roles {self.task_makers}, not {role!r}")
        return RoleTraining(rows=rows, reward_funcs=[reward], reward_weights=[1.0], stats=reward.stats)

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        cfg = ctx.config
        searches = self.searches(ctx, makers["searcher"], cfg.images_per_iteration, "tasks")
        found = [s for s in searches if s.image_id]
        texts = ask(makers["questioner"], ctx.pool, [s.image_id for s in found], cfg.task_temperature, cfg.task_max_new_tokens,
                    cfg.seed + ctx.iteration)
        metas = [{"query": s.parsed.query, "query_type": s.parsed.query_type, "rank": s.rank, "similarity": s.similarity,
                  "searcher_format": searcher_format(s.parsed), "image_cluster_share": s.image_share,
                  "query_cluster_share": s.query_share, "searcher_raw": s.raw} for s in found]
        proposals = [MalformedTask("", s.raw, f"searcher: {s.error}") for s in searches if not s.image_id]
        if found:
            ctx.pool.mark_seen(ctx.pool.load_embedder(ctx.device), [s.image_id for s in found], ctx.iteration)
        return proposals + _question_tasks([s.image_id for s in found], texts, metas)

    def task_set_metadata(self, df, ctx) -> dict:
        """The curriculum a team inspects: what the Searcher looked for, what it got, and the rewards."""
        return curriculum_metadata(df, ctx, searched=True)

    def bootstrap_examples(self, world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
        """A few Searcher examples (type + the image's caption as the query); the Questioner's format is V-Zero's."""
        # every 8th image, without drawing from `rng`: the other recipes' examples stay exactly as they were
        picks = list(world_images[::8])
        return [SupervisedExample(SEARCHER_PROMPT, searcher_target(wi.kind, wi.caption), [], task_type="activezero_searcher") for wi in picks]


@register_recipe("activezero_passive")
class ActiveZeroPassive(ActiveZero):
    """Active-Zero without the Searcher: images drawn uniformly from the same pool (the comparison baseline)."""

    roles = ("questioner", "solver")
    requires = ()

    def default_config(self, profile: str) -> LoopConfig:
        cfg = _profile(profile)
        cfg.task_makers.pop("searcher")
        return cfg

    def training_images(self, ctx: IterationContext) -> list[str]:
        return ctx.sample_image_ids(ctx.config.task_maker_images, "questioner-train")

    def propose_tasks(self, ctx: IterationContext, makers: dict) -> list:
        cfg = ctx.config
        ids = ctx.sample_image_ids(cfg.images_per_iteration, "tasks")
        texts = ask(makers["questioner"], ctx.pool, ids, cfg.task_temperature, cfg.task_max_new_tokens, cfg.seed + ctx.iteration)
        return _question_tasks(ids, texts, [{} for _ in ids])

    def task_set_metadata(self, df, ctx) -> dict:
        return curriculum_metadata(df, ctx, searched=False)

    def bootstrap_examples(self, world_images: Sequence, rng: random.Random) -> list[SupervisedExample]:
        return []  # no format of its own: V-Zero's Questioner format is already in the warm start


# ---------------------------------------------------------------------------- curriculum metadata


def curriculum_rows(df) -> list[dict]:
    """One row per image the iteration used: query, type, image, rank, similarity, c, kept, and the Searcher reward."""
    import json

    rows = []
    for _, r in df.iterrows():
        meta = json.loads(r["meta"]) if isinstance(r["meta"], str) and r["meta"] else {}
        searched = "query" in meta
        c = float(r["c"]) if r["majority"] is not None and r["reason"] != "malformed" else None
        row = {"task_id": r["task_id"], "image_id": r["image_id"], "query_type": meta.get("query_type", ""),
               "query": meta.get("query", ""), "rank": meta.get("rank", -1), "similarity": meta.get("similarity", 0.0),
               "c": c, "reason": r["reason"], "kept": bool(r["kept"])}
        if searched:
            row["searcher_reward"] = searcher_reward(c, meta["searcher_format"], meta["image_cluster_share"], meta["query_cluster_share"])
        elif str(r.get("detail", "")).startswith("searcher:"):
            row["searcher_reward"] = MALFORMED
        rows.append(row)
    return rows


def curriculum_metadata(df, ctx, searched: bool, max_rows: int = 40, max_images: int = 32) -> dict:
    """Markdown table + contact sheet (Dagster-free: strings are markdown, numbers are numbers)."""
    import pandas as pd

    from evaluation.plots import contact_sheet, png_markdown

    rows = curriculum_rows(df)
    table = pd.DataFrame(rows)
    out: dict = {}
    with_image = table[table["image_id"] != ""] if len(table) else table
    if searched and len(table):
        cols = ["query_type", "query", "image_id", "rank", "similarity", "c", "searcher_reward", "reason"]
        out["searcher_queries"] = table[cols].head(max_rows).to_markdown(index=False, floatfmt=".3f")
        rewards = table["searcher_reward"].dropna() if "searcher_reward" in table else []
        out["searcher_reward_mean"] = float(rewards.mean()) if len(rewards) else 0.0
        out["searcher_malformed"] = int((table["image_id"] == "").sum())
        out["distinct_queries"] = int(table[table["query"] != ""]["query"].nunique())
    out["distinct_images"] = int(with_image["image_id"].nunique()) if len(with_image) else 0
    if len(with_image):
        shown = with_image.drop_duplicates("image_id").head(max_images)
        labels = [(q or i)[:18] for q, i in zip(shown["query"], shown["image_id"])]
        sheet = contact_sheet([ctx.pool.get_image(i) for i in shown["image_id"]], labels=labels, cols=8)
        out["retrieved_images" if searched else "drawn_images"] = png_markdown(sheet, "images of this iteration")
    return out
