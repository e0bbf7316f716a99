"""Greedy, sampled and majority-of-m accuracy on labeled questions: the pseudo-label audit.

Label-free training rests on one bet: that the Solver's majority vote over m
samples is right more often than not. This measures it on a labeled held-out
slice of the procedural world with exactly the procedure the loop uses to
label synthetic questions, so a team sees pseudo-label accuracy next to
Solver accuracy each iteration. It also reports greedy vs sampled accuracy:
majority-vote training first sharpens sampling toward the majority, which
shows up as sampled accuracy rising toward greedy before greedy moves.
"""

from __future__ import annotations

from collections.abc import Sequence

from evaluation.stats import Accuracy
from models.formats import extract_choice
from models.generation import GenerationRequest, InferenceEngine, SamplingParams


def consistency_report(
    engine: InferenceEngine,
    examples: Sequence,
    m: int = 10,
    band: tuple[float, float] = (0.3, 0.8),
    max_new_tokens: int = 12,
    seed: int = 0,
) -> dict:
    """Accuracies (each with n and 95% interval) of greedy, single-sample and majority-of-m answers."""
    from recipes.voting import band_reason, majority_vote

    requests = [GenerationRequest(ex.prompt, list(ex.images)) for ex in examples]
    gold = [extract_choice(ex.target) for ex in examples]
    greedy = engine.generate(requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    sampled = engine.generate(requests, SamplingParams(n=m, temperature=1.0, max_new_tokens=max_new_tokens, seed=seed))
    g_ok = s_ok = maj_ok = band_ok = band_n = 0
    cs = []
    for g, (reply,), samples in zip(gold, greedy, sampled):
        g_ok += extract_choice(reply) == g
        letters = [extract_choice(s) for s in samples]
        s_ok += sum(letter == g for letter in letters)
        label, c = majority_vote(letters)
        cs.append(c)
        maj_ok += label == g
        if label is not None and band_reason(c, *band) == "kept":
            band_n += 1
            band_ok += label == g
    n = len(examples)
    return {
        "greedy": Accuracy(g_ok, n).to_dict(),
        "sampled": Accuracy(s_ok, n * m).to_dict(),
        "majority": Accuracy(maj_ok, n).to_dict(),
        "majority_in_band": Accuracy(band_ok, band_n).to_dict(),
        "mean_c": sum(cs) / max(1, len(cs)),
        "m": m,
    }
