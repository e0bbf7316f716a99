"""Greedy multiple-choice accuracy of a model on labeled examples, per task type.

Used for the base model's held-out report after the warm start, and by the
loop's Solver evaluation on the procedural held-out set. Examples carry the
Solver prompt (question, then the lettered options), the target reply and a
task type; a reply counts as correct only if its last `\\boxed{}` names the
right option, by its letter or by its text (`evaluation.answers.boxed_option`),
so a model taught `\\boxed{<option text>}` is scored like one taught letters.

    accuracy, rows = choice_accuracy(engine, held_out)
    accuracy["all"], rows[0]["extracted_from"]
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from evaluation.answers import boxed_option
from evaluation.stats import Accuracy
from models.generation import GenerationRequest, InferenceEngine, SamplingParams

_OPTION_LINE = re.compile(r"^([A-I])\. (.*)$")


def options_in_prompt(prompt: str) -> dict[str, str]:
    """The lettered options of a Solver prompt: the last run of 'A. text' lines, starting at A."""
    found: dict[str, str] = {}
    for line in prompt.splitlines():
        m = _OPTION_LINE.match(line.strip())
        if m and m.group(1) == chr(ord("A") + len(found)):
            found[m.group(1)] = m.group(2).strip()
        elif m and m.group(1) == "A":  # a new run of options starts
            found = {"A": m.group(2).strip()}
    return found


def choice_accuracy(
    engine: InferenceEngine, examples: Sequence, max_new_tokens: int = 12
) -> tuple[dict[str, Accuracy], list[dict]]:
    """Return ({task_type or "all": Accuracy}, per-sample rows)."""
    requests = [GenerationRequest(ex.prompt, list(ex.images)) for ex in examples]
    replies = engine.generate(requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rows = []
    for ex, (reply,) in zip(examples, replies):
        # A prompt without readable options still scores boxed letters, as before.
        options = options_in_prompt(ex.prompt) or dict.fromkeys("ABCD", "")
        gold, _ = boxed_option(ex.target, options)
        pred, source = boxed_option(reply, options)
        ok = int(pred is not None and pred == gold)
        for key in (ex.task_type, "all"):
            tally[key][0] += ok
            tally[key][1] += 1
        rows.append({"task_type": ex.task_type, "reply": reply, "pred": pred, "gold": gold, "correct": bool(ok), "extracted_from": source})
    return {k: Accuracy(c, n) for k, (c, n) in sorted(tally.items())}, rows
