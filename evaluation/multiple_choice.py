"""Greedy multiple-choice accuracy of a model on labeled examples, per task type.

Used for the base model's held-out report after the warm start, and by the
loop's Solver evaluation on the procedural held-out set. Examples carry the
Solver prompt (question, then the lettered options), the target reply and a
task type; a reply counts as correct only if its last `\\boxed{}` names the
right option, by its letter or by its text (`evaluation.answers.boxed_option`),
so a model taught `\\boxed{<option text>}` is scored like one taught letters.

    accuracy, rows = choice_accuracy(engine, held_out)
    accuracy["all"], rows[0]["extracted_from"]

`image_dependence` asks the same questions with blank images, paired: a
model can beat chance by answer priors without looking. `held_out_report` scores every answer kind (4-option, yes/no, open) on
examples that carry their answer, options and kind, as the base's card does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from PIL import Image

from evaluation.answers import boxed_option
from evaluation.stats import Accuracy
from models.formats import extract_answer, is_correct
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


def held_out_report(engine: InferenceEngine, examples: Sequence, max_new_tokens: int = 12) -> dict:
    """Greedy accuracy of a model on labeled examples: by task type, by answer kind, and both.

    Returns {"accuracy": {"all": ..., <task type>: ...} over the 4-option (mc) questions, the
    figure a multiple-choice benchmark reports; "by_kind": {"mc", "yesno", "open"}; "by_kind_and_type":
    {"yesno:exists", ...}; "valid": share of replies that box an answer of the right form}. Each
    accuracy is {"accuracy", "n", "ci95"} (Wilson). Examples need `answer` (and `options` for mc).
    """
    requests = [GenerationRequest(ex.prompt, list(ex.images)) for ex in examples]
    replies = engine.generate(requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    tally: dict[str, dict[str, list[int]]] = {"accuracy": defaultdict(lambda: [0, 0]), "by_kind": defaultdict(lambda: [0, 0]),
                                              "by_kind_and_type": defaultdict(lambda: [0, 0])}
    valid = [0, 0]
    for ex, (reply,) in zip(examples, replies):
        if ex.answer is None:
            raise ValueError(f"held-out example of type {ex.task_type!r} has no answer to score against")
        ok = int(is_correct(reply, ex.answer, ex.options, ex.answer_kind))
        valid[0] += extract_answer(reply, ex.options, ex.answer_kind)[0] is not None
        valid[1] += 1
        keys = [("by_kind", ex.answer_kind), ("by_kind_and_type", f"{ex.answer_kind}:{ex.task_type}")]
        if ex.answer_kind == "mc":
            keys += [("accuracy", "all"), ("accuracy", ex.task_type)]
        for group, key in keys:
            tally[group][key][0] += ok
            tally[group][key][1] += 1
    out = {group: {k: Accuracy(c, n).to_dict() for k, (c, n) in sorted(t.items())} for group, t in tally.items()}
    out["valid"] = Accuracy(*valid).to_dict()
    return out


def blank_like(image: Image.Image) -> Image.Image:
    """A uniform image of `image`'s size in its most frequent colour (its background): the image without content."""
    rgb = image.convert("RGB")
    colour = max(rgb.getcolors(rgb.width * rgb.height), key=lambda c: c[0])[1]
    return Image.new("RGB", rgb.size, colour)


def image_dependence(engine: InferenceEngine, examples: Sequence, max_new_tokens: int = 12) -> dict:
    """Greedy multiple-choice accuracy with every image replaced by `blank_like` it, paired with the real one.

    {"accuracy", "n", "ci95"} of the blank run, plus "real" (the same on the real images), "gained" (questions
    right only with the image) and "lost" (right only without it). A model above chance by answer priors alone
    scores the same either way; what it sees shows as gained >> lost.
    """
    blank = [replace(ex, images=[blank_like(im) for im in ex.images]) for ex in examples]
    real_acc, real_rows = choice_accuracy(engine, examples, max_new_tokens)
    blank_acc, blank_rows = choice_accuracy(engine, blank, max_new_tokens)
    gained = sum(r["correct"] and not b["correct"] for r, b in zip(real_rows, blank_rows))
    lost = sum(b["correct"] and not r["correct"] for r, b in zip(real_rows, blank_rows))
    return {**blank_acc["all"].to_dict(), "real": real_acc["all"].to_dict(), "gained": gained, "lost": lost}
