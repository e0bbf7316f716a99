"""MM-Zero's published rewards (recipes.md, "MM-Zero"): the formulas, and the TRL-contract reward objects.

The formulas are plain functions so every term is table-testable against
hand-computed values; `ProposerReward` and `CoderReward` render, let the
previous Solver answer, and call them.

Coder, per program: renderable (0/1) + solvability (share of the Solver's m
answers to the easy question that match the Proposer's answer) + difficulty
(1 if the hard question is solved at least once). A program that does not
render scores only its penalties, which add up: no render -0.1, syntax error
-0.05 more, not an SVG (or no program at all) -0.5 more; floor -0.5.

Proposer, per well-formed item: mean over the Coder's renders of
`min(solvability, 0.5) + min(c_hard, 1 - c_hard)`; -0.3 if the renders' mean
difficulty is below 0.15; minus a content-type over-representation penalty
(0.15, scaled linearly from 0 at a 0.5 share of the batch to 0.15 at 1.0);
minus a BLEU-cluster diversity penalty (each item's cluster share of the batch,
over caption / easy question / hard question, weights 0.45 / 0.20 / 0.35).
Malformed Proposer output scores -1 (`recipes.core.rewards.MALFORMED`).

    >>> coder_reward("ok", solvability=0.7, hard_solved=True)
    2.7
    >>> coder_reward("syntax_error"), coder_reward("not_svg"), coder_reward("crashed")
    (-0.15, -0.5, -0.1)
    >>> proposer_render_score([(1.0, 0.5, 1)])      # min(1, .5) + min(.5, .5)
    1.0
    >>> content_type_penalties(["chart", "chart", "chart", "grid"])   # 0.75 share -> 0.15 * 0.25 / 0.5
    [0.075, 0.075, 0.075, 0.0]
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from models.generation import GenerationRequest, InferenceEngine, SamplingParams
from recipes.core.diversity import text_cluster_shares
from recipes.core.rewards import MALFORMED, completion_text
from recipes.mmzero.config import MMZeroConfig
from recipes.mmzero.formats import Proposal, coder_prompt, try_parse
from recipes.mmzero.render import render_program, solver_scores

RENDER_FAIL = -0.1
SYNTAX_ERROR = -0.05
NOT_SVG = -0.5
CODER_FLOOR = -0.5
LOW_DIFFICULTY = 0.15  # mean difficulty below this ...
LOW_DIFFICULTY_PENALTY = 0.3  # ... costs this much
CONTENT_SHARE = 0.5  # content types above this share of the batch are penalised ...
CONTENT_PENALTY = 0.15  # ... up to this much at a share of 1
DIVERSITY_WEIGHTS = {"caption": 0.45, "easy": 0.20, "hard": 0.35}
BLEU_THRESHOLD = 0.5  # clusters: average-linkage groups closer than this BLEU distance (recipes.core.diversity)


def coder_reward(render_status: str, solvability: float = 0.0, hard_solved: bool = False) -> float:
    """Coder reward of one program; `render_status` is a `retrieval.render` status ("ok", "syntax_error", ...)."""
    if render_status == "ok":
        return 1.0 + solvability + (1.0 if hard_solved else 0.0)
    penalty = RENDER_FAIL
    if render_status == "syntax_error":
        penalty += SYNTAX_ERROR
    elif render_status == "not_svg":
        penalty += NOT_SVG
    return round(max(CODER_FLOOR, penalty), 10)


def proposer_render_score(renders: Sequence[tuple[float, float, int]]) -> float:
    """Mean over successful renders of min(solvability, 0.5) + min(c_hard, 1 - c_hard) (0 without renders).

    `renders` holds (solvability, c_hard, difficulty) per successful render.
    """
    if not renders:
        return 0.0
    return sum(min(s, 0.5) + min(c, 1.0 - c) for s, c, _ in renders) / len(renders)


def low_difficulty_penalty(renders: Sequence[tuple[float, float, int]]) -> float:
    """0.3 when the renders' mean difficulty (hard question solved at least once) is below 0.15.

    Without a successful render there is no difficulty to measure: no penalty
    (the item already earns nothing from `proposer_render_score`).
    """
    if not renders:
        return 0.0
    mean_d = sum(d for _, _, d in renders) / len(renders)
    return LOW_DIFFICULTY_PENALTY if mean_d < LOW_DIFFICULTY else 0.0


def content_type_penalties(types: Sequence[str]) -> list[float]:
    """Per item: 0.15 * (share - 0.5) / 0.5 for content types holding more than half the batch, else 0."""
    if not types:
        return []
    counts = Counter(types)
    n = len(types)
    out = []
    for t in types:
        share = counts[t] / n
        excess = max(0.0, share - CONTENT_SHARE) / (1.0 - CONTENT_SHARE)
        out.append(round(CONTENT_PENALTY * excess, 10))
    return out


def diversity_penalties(captions: Sequence[str], easy: Sequence[str], hard: Sequence[str],
                        threshold: float = BLEU_THRESHOLD) -> list[float]:
    """0.45 * caption share + 0.20 * easy-question share + 0.35 * hard-question share, per item."""
    w = DIVERSITY_WEIGHTS
    fields = zip(text_cluster_shares(captions, threshold=threshold), text_cluster_shares(easy, threshold=threshold),
                 text_cluster_shares(hard, threshold=threshold))
    return [w["caption"] * c + w["easy"] * e + w["hard"] * h for c, e, h in fields]


def proposer_rewards(items: Sequence[dict | None], threshold: float = BLEU_THRESHOLD) -> list[float]:
    """The Proposer's reward for a batch; None marks malformed output (-1).

    Each well-formed item is a dict with "renders" [(solvability, c_hard,
    difficulty), ...], "content_type", "caption", "easy", "hard". The batch
    penalties (content type, diversity) are computed over the well-formed items.
    """
    good = [i for i, it in enumerate(items) if it is not None]
    out = [MALFORMED] * len(items)
    if not good:
        return out
    ok = [items[i] for i in good]
    content = content_type_penalties([it["content_type"] for it in ok])
    diversity = diversity_penalties([it["caption"] for it in ok], [it["easy"] for it in ok], [it["hard"] for it in ok], threshold)
    for k, i in enumerate(good):
        it = items[i]
        out[i] = proposer_render_score(it["renders"]) - low_difficulty_penalty(it["renders"]) - content[k] - diversity[k]
    return out


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
    sandbox and answered by the (previous) Solver; see `proposer_rewards`."""

    __name__ = "mmzero_proposer"

    def __init__(self, coder: InferenceEngine, solver: InferenceEngine, cfg: MMZeroConfig, seed: int = 0):
        super().__init__("proposer")
        self.coder, self.solver, self.cfg, self.seed = coder, solver, cfg, seed

    def __call__(self, completions, **_) -> list[float]:
        cfg = self.cfg
        parsed = [try_parse(completion_text(c)) for c in completions]
        good = [i for i, p in enumerate(parsed) if p is not None]
        self.seed += 1
        outs = self.coder.generate([GenerationRequest(coder_prompt(parsed[i].caption, cfg.render_size)) for i in good],
                                   SamplingParams(n=cfg.coder_samples, temperature=cfg.coder_temperature,
                                                  max_new_tokens=cfg.coder_max_new_tokens, seed=self.seed)) if good else []
        rendered: list[tuple[int, Proposal, object]] = []
        for i, replies in zip(good, outs):
            for reply in replies:
                _, _, res = render_program(reply, cfg)
                self.stats["programs"] += 1
                if res.ok:
                    rendered.append((i, parsed[i], res.image))
        scores = solver_scores(self.solver, [(p, img) for _, p, img in rendered], cfg.m, cfg.vote_max_new_tokens, self.seed)
        per_item: dict[int, list] = {i: [] for i in good}
        for (i, _, _), sc in zip(rendered, scores):
            per_item[i].append(sc.triple())
            self.stats["solvability_sum"] += sc.solvability
        items = [None if p is None else {"renders": per_item[i], "content_type": p.content_type, "caption": p.caption,
                                         "easy": p.easy, "hard": p.hard} for i, p in enumerate(parsed)]
        rewards = proposer_rewards(items, cfg.bleu_threshold)
        self.stats["completions"] += len(completions)
        self.stats["malformed"] += len(completions) - len(good)
        self.stats["rendered"] += len(rendered)
        self.stats["reward_sum"] += sum(rewards)
        return rewards


class CoderReward(_Stats):
    """The Coder's reward in TRL's contract: `reward(completions, proposal, **columns)`; `proposal` is the
    JSON of the Proposer item the program was written for. Render in the sandbox, then the (previous) Solver."""

    __name__ = "mmzero_coder"

    def __init__(self, solver: InferenceEngine, cfg: MMZeroConfig, seed: int = 0):
        super().__init__("coder")
        self.solver, self.cfg, self.seed = solver, cfg, seed

    def __call__(self, completions, proposal, **_) -> list[float]:
        props = [Proposal(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(p).items()}) for p in proposal]
        results = [render_program(completion_text(c), self.cfg)[2] for c in completions]
        ok = [i for i, r in enumerate(results) if r.ok]
        self.seed += 1
        scored = solver_scores(self.solver, [(props[i], results[i].image) for i in ok], self.cfg.m, self.cfg.vote_max_new_tokens,
                               self.seed)
        scores = dict(zip(ok, scored))
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
