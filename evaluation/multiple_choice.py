"""Greedy multiple-choice accuracy of a model on labeled examples, per task type.

Used for the base model's held-out report after the warm start, and by the
loop's Solver evaluation on the procedural held-out set. Examples carry the
Solver prompt, the target `\\boxed{letter}` and a task type; the reply counts
as correct only if its last `\\boxed{}` holds exactly the right letter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from evaluation.stats import Accuracy
from models.generation import GenerationRequest, InferenceEngine, SamplingParams
from models.formats import extract_choice


def choice_accuracy(
    engine: InferenceEngine, examples: Sequence, max_new_tokens: int = 12
) -> tuple[dict[str, Accuracy], list[dict]]:
    """Return ({task_type or "all": Accuracy}, per-sample rows)."""
    requests = [GenerationRequest(ex.prompt, list(ex.images)) for ex in examples]
    replies = engine.generate(requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows = []
    for ex, (reply,) in zip(examples, replies):
        gold = extract_choice(ex.target)
        pred = extract_choice(reply)
        ok = int(pred is not None and pred == gold)
        for key in (ex.task_type, "all"):
            tally[key][0] += ok
            tally[key][1] += 1
        rows.append({"task_type": ex.task_type, "reply": reply, "pred": pred, "gold": gold, "correct": bool(ok)})
    return {k: Accuracy(c, n) for k, (c, n) in sorted(tally.items())}, rows
