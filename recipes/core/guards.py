"""Guards: does an iteration show the known failure modes of label-free RL? Each returns a verdict with its figures.

Label-free RL collapses suddenly (SRT), sharpens onto one answer (EVOL-RL),
flips right answers to wrong ones (TTRL-Guard) and trains on pseudo-labels
that get worse over iterations (R-Zero); none of the published systems
stops when it happens. Each guard here is computed from what the loop
already produces (the labeled audit slice, the held-out predictions of the
Solver, its parent and the base, the task set), with the figures a team needs
to see, and a message that says what to do. The Dagster asset checks
(`assets.guards`) wrap them; the chain sensor and the next iteration's
config refuse to go on after a failed *blocking* guard.

- `answer_collapse`: the share of the most frequent held-out answer and the
  entropy of the answer distribution, against the base's and the parent's;
- `label_quality`: pseudo-label accuracy on the audit slice, labeled by the
  loop's own labeling code, with its Wilson interval; fails when the upper
  bound is not above chance, when it fell significantly from the parent
  iteration's, or when the loop's labels disagree with the Solver's own votes
  (a labeling bug);
- `flip_rate`: right -> wrong vs wrong -> right on the same questions (an exact
  McNemar test), against the parent and, from iteration 2, against the base, on
  the 4-option held-out set and on every configured benchmark (each answer
  form: a Solver trained on 4-option questions can unlearn the open ones; a
  drift of several in-noise steps shows only against the base); fails when
  losses significantly exceed gains on any of them (Bonferroni over the sets,
  so a blocking guard does not stop a chain more often than `alpha` by chance);
- `task_format`: the task makers' malformed rate and the share of degenerate
  tasks (duplicates, answers given away in the question);
- `base_above_chance`: the base model's held-out accuracy, lower bound above chance.

    >>> entropy_bits(["A", "A", "B", "B"]), top_share(["A", "A", "A", "B"])
    (1.0, ('A', 0.75))
    >>> mcnemar_losses_p(gains=2, losses=12) < 0.05
    True
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from evaluation.stats import Accuracy, mcnemar_losses_p
from recipes.core.config import GuardConfig

CHANCE_4_OPTIONS = 0.25
NO_ANSWER = "(no answer)"


@dataclass
class GuardResult:
    """One guard's verdict: passed or not, why in one paragraph, and the figures behind it."""

    name: str
    passed: bool
    message: str
    metrics: dict = field(default_factory=dict)
    blocking: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _answers(predictions: Sequence[dict], key: str = "greedy") -> list[str]:
    return [p.get(key) or NO_ANSWER for p in predictions]


def entropy_bits(answers: Sequence[str]) -> float:
    n = len(answers)
    if not n:
        return 0.0
    return float(-sum((k / n) * math.log2(k / n) for k in Counter(answers).values()))


def top_share(answers: Sequence[str]) -> tuple[str, float]:
    if not answers:
        return NO_ANSWER, 0.0
    answer, k = Counter(answers).most_common(1)[0]
    return answer, k / len(answers)


def answer_collapse(current: Sequence[dict], parent: Sequence[dict] | None, base: Sequence[dict] | None,
                    cfg: GuardConfig) -> GuardResult:
    """Held-out greedy answers: the top answer's share and the entropy, against the base's and the parent's."""
    answers = _answers(current)
    top, share = top_share(answers)
    ent = entropy_bits(answers)
    refs = {name: entropy_bits(_answers(p)) for name, p in (("base", base), ("parent", parent)) if p}
    metrics = {"top_answer": top, "top_answer_share": round(share, 4), "entropy_bits": round(ent, 4), "n": len(answers),
               **{f"{k}_entropy_bits": round(v, 4) for k, v in refs.items()},
               **{f"{k}_top_answer_share": round(top_share(_answers(p))[1], 4) for k, p in (("base", base), ("parent", parent)) if p},
               "max_top_answer_share": cfg.max_top_answer_share, "min_entropy_ratio": cfg.min_entropy_ratio}
    problems = []
    if share > cfg.max_top_answer_share:
        problems.append(f"the Solver answers {top!r} to {share:.0%} of {len(answers)} held-out questions "
                        f"(more than {cfg.max_top_answer_share:.0%})")
    for name, ref in refs.items():
        if ref > 0 and ent < cfg.min_entropy_ratio * ref:
            problems.append(f"its answer entropy fell to {ent:.2f} bits from the {name}'s {ref:.2f} "
                            f"(below {cfg.min_entropy_ratio:.0%} of it)")
    if problems:
        return GuardResult("answer_collapse", False, "Answer collapse: " + "; ".join(problems) + ". Majority-vote rewards "
                           "sharpen sampling toward one answer; do not train on from this checkpoint. Rerun the iteration "
                           "with fewer Solver steps or a lower learning_rate, a narrower band (band_high), or from a "
                           "stronger base.", metrics)
    return GuardResult("answer_collapse", True, f"top answer {top!r} on {share:.0%} of held-out questions; entropy {ent:.2f} bits",
                       metrics)


def label_quality(audit: dict, parent_audit: dict | None, chance: float, cfg: GuardConfig) -> GuardResult:
    """Pseudo-labels as the loop produces them, on the labeled audit slice (see `recipes.core.audit.label_audit`)."""
    rows = audit["predictions"]
    n = len(rows)
    right = sum(r["label"] == r["gold"] for r in rows)
    acc = Accuracy(right, n)
    lo, hi = acc.interval
    agree = sum(r["label"] == r["reference"] for r in rows) / max(1, n)
    metrics = {"pseudo_label_accuracy": round(acc.value, 4), "ci95": [round(lo, 4), round(hi, 4)], "n": n, "chance": chance,
               "agreement_with_own_votes": round(agree, 4)}
    problems = []
    if agree < cfg.min_label_agreement:
        problems.append(f"only {agree:.0%} of the loop's pseudo-labels equal the majority of the Solver's own votes on the "
                        "same samples: a labeling bug in the recipe or the loop (labels shuffled or misassigned)")
    if hi <= chance:
        problems.append(f"pseudo-label accuracy {acc.value:.1%} [{lo:.1%}, {hi:.1%}] (n={n}) is not above chance ({chance:.0%})")
    if parent_audit and parent_audit.get("predictions"):
        before = {r["key"]: r["label"] == r["gold"] for r in parent_audit["predictions"]}
        pairs = [(before[r["key"]], r["label"] == r["gold"]) for r in rows if r["key"] in before]
        gains = sum(1 for b, a in pairs if a and not b)
        losses = sum(1 for b, a in pairs if b and not a)
        p = mcnemar_losses_p(gains, losses)
        prev = sum(b for b, _ in pairs) / max(1, len(pairs))
        metrics.update({"parent_pseudo_label_accuracy": round(prev, 4), "labels_gained": gains, "labels_lost": losses,
                        "p_fell": round(p, 5)})
        if p < cfg.alpha:
            problems.append(f"pseudo-label accuracy fell from {prev:.1%} to {acc.value:.1%} on the same audit questions "
                            f"({losses} lost, {gains} gained, p={p:.3g})")
    if problems:
        return GuardResult("label_quality", False, "Pseudo-labels are not trustworthy: " + "; ".join(problems) + ". Training "
                           "the Solver on them teaches errors: fix the labeling, or rerun with a stronger labeler (the parent "
                           "Solver) or a higher band floor (band_low).", metrics)
    return GuardResult("label_quality", True, f"pseudo-labels right {acc.value:.1%} [{lo:.1%}, {hi:.1%}] (n={n}), chance {chance:.0%}",
                       metrics)


def _flips(current: Sequence[dict], before: Sequence[dict]) -> dict:
    pairs = [(b["greedy"] == b["gold"], c["greedy"] == c["gold"]) for c, b in zip(current, before)]
    return {"n": len(pairs), "gained": sum(1 for b, a in pairs if a and not b), "lost": sum(1 for b, a in pairs if b and not a)}


def flip_rate(current: Sequence[dict], parent: Sequence[dict], cfg: GuardConfig,
              benchmarks: dict[str, dict] | None = None, base: Sequence[dict] | None = None) -> GuardResult:
    """Right -> wrong against wrong -> right, paired on the same held-out questions.

    `base` (the base model's predictions on the same questions, from iteration 2 on) adds the set
    "held-out 4-option vs base"; `benchmarks` adds the configured benchmarks' paired changes ({name: {"n",
    "gained", "lost"}}, `evaluation.report.paired_change`; a name ending in " vs base" is against the base,
    any other against the parent). Each set is tested at alpha / (number of sets)."""
    flips = _flips(current, parent)
    gains, losses = flips["gained"], flips["lost"]
    sets = {"held-out 4-option": flips, **({"held-out 4-option vs base": _flips(current, base)} if base else {}),
            **(benchmarks or {})}
    level = cfg.alpha / len(sets)
    per_set = {name: {**ch, "p_more_losses": round(mcnemar_losses_p(ch["gained"], ch["lost"]), 5)} for name, ch in sets.items()}
    p = per_set["held-out 4-option"]["p_more_losses"]
    metrics = {"right_to_wrong": losses, "wrong_to_right": gains, "n": flips["n"], "p_more_losses": round(p, 5),
               "flip_rate": round((gains + losses) / max(1, flips["n"]), 4), "alpha_per_set": round(level, 5),
               "sets": per_set}
    unlearned = [(name, ch) for name, ch in per_set.items() if ch["p_more_losses"] < level]
    if unlearned:
        which = "; ".join(f"{name}: {ch['lost']} lost, {ch['gained']} gained of {ch['n']} (p={ch['p_more_losses']:.3g})"
                          for name, ch in unlearned)
        return GuardResult("flip_rate", False, f"The Solver lost significantly more questions than it gained against its "
                           f"parent or the base ({which}; each set at p < {level:.3g}): it unlearns faster than it learns. "
                           "Keep the parent (or the last iteration that held against the base); rerun with fewer steps "
                           "or a higher band floor.", metrics)
    return GuardResult("flip_rate", True, "; ".join(f"{name}: +{ch['gained']}/-{ch['lost']} (n={ch['n']}, "
                                                     f"p={ch['p_more_losses']:.3g})" for name, ch in per_set.items())
                       + " (against the parent unless 'vs base')", metrics)


def task_format(reasons: Sequence[str], degenerate: int, well_formed: int, cfg: GuardConfig) -> GuardResult:
    """The task makers' malformed rate and the share of degenerate well-formed tasks."""
    n = len(reasons)
    malformed = sum(r == "malformed" for r in reasons)
    rate = malformed / max(1, n)
    share = degenerate / max(1, well_formed)
    metrics = {"generated": n, "malformed_rate": round(rate, 4), "degenerate": degenerate, "degenerate_share": round(share, 4)}
    problems = []
    if rate > cfg.max_malformed_rate:
        problems.append(f"{rate:.0%} of the {n} task-maker outputs are malformed")
    if share > cfg.max_degenerate_share:
        problems.append(f"{share:.0%} of the well-formed tasks are duplicates or give their answer away")
    if problems:
        return GuardResult("task_format", False, "The task makers are gaming or losing the format: " + "; ".join(problems)
                           + ". Lower the task makers' learning_rate, or rebuild the base with a longer warm start.", metrics)
    return GuardResult("task_format", True, f"malformed {rate:.0%}, degenerate {share:.0%} of well-formed", metrics)


def gives_answer_away(question: str, options: Sequence[str], label: str | None) -> bool:
    """The majority's option text appears word for word in the question stem (answerable without the image)."""
    if not isinstance(label, str) or label not in ("A", "B", "C", "D") or len(options) != 4:
        return False
    text = str(options["ABCD".index(label)]).lower().strip()
    return bool(text) and f" {text} " in f" {' '.join(str(question).lower().split())} "


def base_above_chance(accuracy: dict, chance: float = CHANCE_4_OPTIONS, blank: dict | None = None,
                      alpha: float = 0.05) -> GuardResult:
    """The base's held-out accuracy ({"accuracy", "n", "ci95"}): its lower 95% bound must be above chance, and,
    when `blank` is given ({"accuracy", "n", "gained", "lost"}: the same questions with every image replaced by a
    blank one, paired), significantly above what it answers without looking (one-sided McNemar)."""
    acc, n, (lo, hi) = accuracy["accuracy"], accuracy["n"], accuracy["ci95"]
    metrics = {"held_out_accuracy": acc, "ci95": [lo, hi], "n": n, "chance": chance}
    if lo <= chance:
        return GuardResult("base_above_chance", False, f"The base answers {acc:.1%} [{lo:.1%}, {hi:.1%}] (n={n}) of held-out "
                           f"questions right, not above chance ({chance:.0%}): a base at chance cannot self-evolve (its "
                           "majority votes are noise). Rebuild it with more warm-start steps (warm_start_steps) or point "
                           "model_path at a stronger checkpoint.", metrics)
    if blank is not None:
        # right only with the image vs right only without it: a base above chance by answer priors alone is blind
        p = mcnemar_losses_p(blank["lost"], blank["gained"])
        metrics.update({"blank_image_accuracy": blank["accuracy"], "right_only_with_image": blank["gained"],
                        "right_only_without_image": blank["lost"], "p_not_seeing": round(p, 5)})
        if p >= alpha:
            return GuardResult("base_above_chance", False, f"The base answers {acc:.1%} (n={n}) of held-out questions right, "
                               f"but {blank['accuracy']:.1%} with every image replaced by a blank one (right only with the "
                               f"image: {blank['gained']}, only without: {blank['lost']}, p={p:.3g}): it answers from the "
                               "questions' priors, not the images, so its votes cannot improve what it sees. Rebuild it with a "
                               "perception curriculum (curriculum_images, curriculum_steps) or point model_path at a stronger "
                               "checkpoint.", metrics)
        return GuardResult("base_above_chance", True, f"base held-out accuracy {acc:.1%} [{lo:.1%}, {hi:.1%}] (n={n}); "
                           f"{blank['accuracy']:.1%} with blank images (p={p:.3g})", metrics)
    return GuardResult("base_above_chance", True, f"base held-out accuracy {acc:.1%} [{lo:.1%}, {hi:.1%}] (n={n})", metrics)
