"""Active-Zero's Searcher and Questioner rewards (recipes.md, "Active-Zero"), formulas and TRL-contract objects.

    searcher   = 0.9 * min(c, 1 - c) + 0.1 * format - image_cluster_share - query_cluster_share
    questioner = 0.9 * min(c, 1 - c) + 0.1 * format - bleu_cluster_share
    malformed output (missing tags, empty query) = -1

    >>> round(searcher_reward(0.5, 1.0, 0.25, 0.0), 10)
    0.3
    >>> questioner_reward(None, 1.0, 0.5)   # no majority: the uncertainty term is 0
    -0.4
"""

from __future__ import annotations

from recipes.activezero.search import run_searches, searcher_format
from recipes.core.context import IterationContext
from recipes.core.diversity import text_cluster_shares
from recipes.core.questioner import QuestionerOutput, ask, try_parse
from recipes.core.rewards import MALFORMED, completion_text, uncertainty
from recipes.core.voting import solver_request, vote


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


def _votes(ctx: IterationContext, solver, questions, images, seed: int):
    requests = [solver_request(im, q.question, q.options) for q, im in zip(questions, images)]
    return vote(solver, requests, ctx.config.m, max_new_tokens=ctx.config.vote_max_new_tokens, seed=seed)


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
        ctx, cfg = self.ctx, self.ctx.config
        searches = run_searches(ctx.pool, self.embedder, [completion_text(c) for c in completions], self.rng, ctx.image)
        found = [s for s in searches if s.image_id]
        self.seed += 1
        texts = ask(self.questioner, [ctx.image(s.image_id) for s in found], cfg.task_temperature, cfg.task_max_new_tokens, self.seed)
        asked = [(s, q) for s, q in zip(found, map(try_parse, texts)) if q is not None]
        votes = _votes(ctx, self.solver, [q for _, q in asked], [ctx.image(s.image_id) for s, _ in asked], self.seed)
        c_of = {id(s): (v.c if v.label is not None else None) for (s, _), v in zip(asked, votes)}
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
        st["voted"] += sum(v.label is not None for v in votes)
        st["c_sum"] += sum(v.c for v in votes if v.label is not None)
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
        parsed = [try_parse(completion_text(c)) for c in completions]
        idx = [i for i, q in enumerate(parsed) if q is not None]
        self.seed += 1
        votes = _votes(self.ctx, self.solver, [parsed[i] for i in idx], [image[i] for i in idx], self.seed)
        shares = text_cluster_shares([question_text(parsed[i]) for i in idx])
        rewards = [MALFORMED] * len(completions)
        for i, v, share in zip(idx, votes, shares):
            rewards[i] = questioner_reward(v.c if v.label is not None else None, 1.0, share)
        st = self.stats
        st["completions"] += len(completions)
        st["malformed"] += len(completions) - len(idx)
        st["voted"] += sum(v.label is not None for v in votes)
        st["c_sum"] += sum(v.c for v in votes if v.label is not None)
        st["bleu_share_sum"] += sum(shares)
        return rewards

    def summary(self) -> dict:
        st = self.stats
        n, v = max(1, st["completions"]), max(1, st["voted"])
        return {"questioner_completions": st["completions"], "questioner_malformed_rate": st["malformed"] / n,
                "questioner_mean_c": st["c_sum"] / v,
                "questioner_bleu_cluster_share": st["bleu_share_sum"] / max(1, n - st["malformed"])}
