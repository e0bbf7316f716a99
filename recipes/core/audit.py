"""The self-consistency audit: greedy, sampled and majority-of-m accuracy on labeled questions.

Label-free training rests on one bet: that the Solver's majority vote over m
samples is right more often than not. This measures it on a labeled held-out
slice of the procedural world with exactly the vote the loop uses to label
synthetic questions (`recipes.core.voting.vote`), so a team sees
pseudo-label accuracy next to Solver accuracy each iteration. It also reports
greedy vs sampled accuracy (majority-vote training first sharpens sampling
toward the majority, which shows up as sampled accuracy rising toward greedy
before greedy moves), the headroom maj@m - greedy (label-free RL can only
help where the majority beats the single answer), and the per-question
answers the guards compare against the parent (`predictions`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from evaluation.stats import Accuracy
from models.formats import read_reply
from models.generation import GenerationRequest, InferenceEngine, SamplingParams
from recipes.core import loop
from recipes.core.context import IterationContext
from recipes.core.keep import KeepRule
from recipes.core.types import ProposedTask
from recipes.core.voting import band_reason, majority_vote, vote


def consistency_report(
    engine: InferenceEngine,
    examples: Sequence,
    m: int = 10,
    band: tuple[float, float] = (0.3, 0.8),
    max_new_tokens: int = 12,
    seed: int = 0,
) -> dict:
    """Accuracies (each with n and 95% interval) of greedy, single-sample and majority-of-m answers, and per-question rows."""
    requests = [GenerationRequest(ex.prompt, list(ex.images)) for ex in examples]
    gold = [read_reply(ex.target, ex.prompt) for ex in examples]  # a letter for mc, the normalised answer otherwise
    greedy = engine.generate(requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    votes = vote(engine, requests, m, max_new_tokens=max_new_tokens, seed=seed)
    g_ok = s_ok = maj_ok = band_ok = band_n = out_ok = out_n = 0
    rows = []
    for ex, g, (reply,), v in zip(examples, gold, greedy, votes):
        pred = read_reply(reply, ex.prompt)
        g_ok += pred == g
        s_ok += sum(a == g for a in v.answers)
        maj_ok += v.label == g
        in_band = v.label is not None and band_reason(v.c, *band) == "kept"
        if in_band:
            band_n += 1
            band_ok += v.label == g
        elif v.label is not None:
            out_n += 1
            out_ok += v.label == g
        rows.append({"task_type": ex.task_type, "gold": g, "greedy": pred, "majority": v.label, "c": v.c})
    n = len(examples)
    greedy_acc, majority_acc = Accuracy(g_ok, n), Accuracy(maj_ok, n)
    return {
        "greedy": greedy_acc.to_dict(),
        "sampled": Accuracy(s_ok, n * m).to_dict(),
        "majority": majority_acc.to_dict(),
        "majority_in_band": Accuracy(band_ok, band_n).to_dict(),
        "majority_out_of_band": Accuracy(out_ok, out_n).to_dict(),
        "headroom": majority_acc.value - greedy_acc.value,  # maj@m - greedy: what a majority reward can add
        "mean_c": sum(v.c for v in votes) / max(1, len(votes)),
        "m": m,
        "predictions": rows,
    }


def label_audit(ctx: IterationContext, labeler: InferenceEngine, tasks: Sequence[tuple], rule: KeepRule) -> dict:
    """Pseudo-labels of labeled (world image, task) pairs as the loop makes them, beside the majority of their own votes.

    Returns the accuracy with its interval, in and out of the keep rule, the share of labels equal to the
    majority recomputed from the row's answers (1.0 unless the labeling is broken), and per-question rows
    (`key`, `gold`, `label`, `reference`, `c`, `kept`).
    """
    images = {wi.id: wi.image for wi, _ in tasks}
    proposals = [ProposedTask(wi.id, t.question, list(t.options), {"task_id": t.task_id}) for wi, t in tasks]
    labeled = loop.label_tasks(ctx, proposals, labeler, rule, image=images.__getitem__)
    gold = {t.task_id: t for _, t in tasks}
    rows = []
    for _, r in labeled.iterrows():
        if r["reason"] == "duplicate":  # the loop votes once per distinct question
            continue
        t = gold[json.loads(r["meta"])["task_id"]]
        label = r["majority"] if isinstance(r["majority"], str) else None  # pandas stores a missing label as NaN
        rows.append({"key": t.task_id, "task_type": t.task_type, "gold": t.answer, "label": label,
                     "reference": majority_vote(list(r["answers"]))[0], "c": float(r["c"]), "kept": bool(r["kept"])})
    n = len(rows)
    right = sum(r["label"] == r["gold"] for r in rows)
    kept = [r for r in rows if r["kept"]]
    dropped = [r for r in rows if not r["kept"] and r["label"] is not None]
    return {
        "pseudo_label": Accuracy(right, n).to_dict(),
        "in_rule": Accuracy(sum(r["label"] == r["gold"] for r in kept), len(kept)).to_dict(),
        "outside_rule": Accuracy(sum(r["label"] == r["gold"] for r in dropped), len(dropped)).to_dict(),
        "agreement_with_own_votes": sum(r["label"] == r["reference"] for r in rows) / max(1, n),
        "m": ctx.config.m,
        "predictions": rows,
    }
