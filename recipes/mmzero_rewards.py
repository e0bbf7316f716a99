"""MM-Zero's published reward formulas as plain functions (recipes.md, "MM-Zero").

The TRL-contract reward objects in `recipes.mmzero` call these after rendering
and Solver voting; keeping the arithmetic here makes every term table-testable
against hand-computed values.

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
Malformed Proposer output scores -1 (`recipes.rewards.MALFORMED`).

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

from collections import Counter
from collections.abc import Sequence

RENDER_FAIL = -0.1
SYNTAX_ERROR = -0.05
NOT_SVG = -0.5
CODER_FLOOR = -0.5
LOW_DIFFICULTY = 0.15  # mean difficulty below this ...
LOW_DIFFICULTY_PENALTY = 0.3  # ... costs this much
CONTENT_SHARE = 0.5  # content types above this share of the batch are penalised ...
CONTENT_PENALTY = 0.15  # ... up to this much at a share of 1
DIVERSITY_WEIGHTS = {"caption": 0.45, "easy": 0.20, "hard": 0.35}
BLEU_THRESHOLD = 0.5  # clusters: average-linkage groups closer than this BLEU distance


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


def bleu(a: str, b: str) -> float:
    """Symmetric sentence BLEU (nltk, smoothing method 1) of two whitespace-tokenized, lowercased texts."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    ta, tb = a.lower().split(), b.lower().split()
    if not ta or not tb:
        return 1.0 if ta == tb else 0.0
    smooth = SmoothingFunction().method1
    return 0.5 * (sentence_bleu([ta], tb, smoothing_function=smooth) + sentence_bleu([tb], ta, smoothing_function=smooth))


def bleu_clusters(texts: Sequence[str], threshold: float = BLEU_THRESHOLD) -> list[int]:
    """Cluster label per text: average-linkage agglomerative clustering on BLEU distance 1 - BLEU."""
    n = len(texts)
    if n <= 1:
        return [0] * n
    from scipy.cluster.hierarchy import fcluster, linkage

    condensed = [1.0 - bleu(texts[i], texts[j]) for i in range(n) for j in range(i + 1, n)]
    # a merge at distance < threshold joins texts; fcluster's criterion is "<= t", hence the tiny margin
    return [int(c) for c in fcluster(linkage(condensed, method="average"), t=threshold - 1e-9, criterion="distance")]


def cluster_shares(texts: Sequence[str], threshold: float = BLEU_THRESHOLD) -> list[float]:
    """Each text's cluster size / batch size: the diversity penalty of that field."""
    labels = bleu_clusters(texts, threshold)
    counts = Counter(labels)
    return [counts[c] / len(texts) for c in labels]


def diversity_penalties(captions: Sequence[str], easy: Sequence[str], hard: Sequence[str],
                        threshold: float = BLEU_THRESHOLD) -> list[float]:
    """0.45 * caption share + 0.20 * easy-question share + 0.35 * hard-question share, per item."""
    w = DIVERSITY_WEIGHTS
    fields = zip(cluster_shares(captions, threshold), cluster_shares(easy, threshold), cluster_shares(hard, threshold))
    return [w["caption"] * c + w["easy"] * e + w["hard"] * h for c, e, h in fields]


def proposer_rewards(items: Sequence[dict | None], threshold: float = BLEU_THRESHOLD) -> list[float]:
    """The Proposer's reward for a batch; None marks malformed output (-1).

    Each well-formed item is a dict with "renders" [(solvability, c_hard,
    difficulty), ...], "content_type", "caption", "easy", "hard". The batch
    penalties (content type, diversity) are computed over the well-formed items.
    """
    from recipes.rewards import MALFORMED

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
