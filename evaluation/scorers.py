"""Benchmark scorers: the prompt a sample is asked with, what a reply counts as, and the metrics.

One class per scoring family in the shared reference (docs/benchmarks.md):
multiple choice (MMStar, AI2D, ScienceQA, RealWorldQA, MMMU),
ChartQA relaxed accuracy, MathVista, the yes/no sets (POPE's F1, MME's
acc + acc+ sums, HallusionBench's aAcc / qAcc / fAcc) and the procedural
held-out set; custom sets have theirs in `evaluation.custom`, one rule per
question. `evaluation.benchmarks` picks a scorer per benchmark name; the
runner calls, for every sample, `prompt(sample)`, then `judge_reply(sample,
reply)`, and once per benchmark `aggregate(samples, judgements)`.

    scorer = PopeScorer()
    j = scorer.judge_reply(sample, "Yes, there is.")      # Judgement(extracted='yes', correct=...)
    agg = scorer.aggregate(samples, judgements)           # Aggregate(metric='f1', main=Score(...), sub_scores={...})

Every score carries its sample count and a 95% interval: Wilson for shares
of correct answers, a seeded bootstrap for F1 and MME sums.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from evaluation.answers import (
    Judge,
    boxed_option,
    chartqa_correct,
    choose_option,
    gold_yes_no,
    mathvista_judgement,
    open_answer,
    same_number_or_text,
    short_answer_from,
    yes_no_from,
)
from evaluation.readers import BenchSample
from evaluation.stats import Score, bootstrap_intervals
from models.formats import extract_answer, normalize_answer, solver_prompt

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Judgement:
    """What one reply was read as, whether that is right, and where in the reply it was found
    (one of `evaluation.answers.EXTRACTED_FROM`)."""

    extracted: str | None
    correct: bool
    extracted_from: str = ""


@dataclass
class Aggregate:
    """A benchmark's headline score plus named sub-scores (each a dict with score, n, ci95, ...)."""

    metric: str
    main: Score
    sub_scores: dict[str, dict] = field(default_factory=dict)


def _meta_text(s: BenchSample, *keys: str) -> str:
    for k in keys:
        v = s.meta.get(k)
        if v is not None and str(v).strip() not in ("", "nan", "None"):
            return str(v).strip()
    return ""


def breakdown(samples: Sequence[BenchSample], judgements: Sequence[Judgement], *keys: str, prefix: str = "") -> dict[str, dict]:
    """Accuracy (Wilson) per value of the first present meta key among `keys`; {} if none is present."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for s, j in zip(samples, judgements):
        g = _meta_text(s, *keys)
        if g:
            groups[g].append(j.correct)
    return {f"{prefix}{g}": Score.of_flags(flags).to_dict() for g, flags in sorted(groups.items())}


def options_block(options: dict[str, str]) -> str:
    return "\n".join(f"{k}. {v}" for k, v in options.items())


class Scorer:
    """Base: accuracy over samples with a per-category breakdown; subclasses define the reply rule."""

    metric = "accuracy"
    max_new_tokens = 16
    prompt_template = "{question}"
    breakdown_keys: tuple[str, ...] = ("category",)
    rule_name = ""  # the predictions' `rule` column

    def rule_of(self, s: BenchSample) -> str:
        """The name of the rule that judges sample `s`."""
        return self.rule_name

    def prompt(self, s: BenchSample) -> str:
        raise NotImplementedError

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        raise NotImplementedError

    def aggregate(self, samples: Sequence[BenchSample], judgements: Sequence[Judgement], seed: int = 0) -> Aggregate:
        main = Score.of_flags(j.correct for j in judgements)
        return Aggregate(self.metric, main, breakdown(samples, judgements, *self.breakdown_keys))


# ---------------------------------------------------------------- multiple choice and free-form


MC_INSTRUCTION = "Answer with the option letter."
SHORT_INSTRUCTION = "Answer with a single word or number."


class MultipleChoiceScorer(Scorer):
    """Option-letter inference (MMStar, AI2D, ScienceQA, RealWorldQA, MMMU).

    A sample without options (MMMU's open questions)
    is asked for a short answer and scored by exact / numeric match.
    """

    prompt_template = f"[Hint: {{hint}}\\n]{{question}}\\n{{A. option}}...\\n{MC_INSTRUCTION}  (no options: {{question}}\\n{SHORT_INSTRUCTION})"
    rule_name = "choice"

    def rule_of(self, s: BenchSample) -> str:
        return "choice" if s.options else "exact"

    def prompt(self, s: BenchSample) -> str:
        hint = _meta_text(s, "hint")
        parts = [f"Hint: {hint}"] if hint else []
        parts.append(s.question.strip())
        if s.options:
            if not s.meta.get("options_in_question"):
                parts.append(options_block(s.options))
            parts.append(MC_INSTRUCTION)
        else:
            parts.append(SHORT_INSTRUCTION)
        return "\n".join(parts)

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        if not s.options:
            pred, source = open_answer(reply)
            return Judgement(pred, same_number_or_text(pred, s.answer), source)
        letter, source = choose_option(reply, s.options, judge, s.question)
        return Judgement(letter, letter is not None and letter == s.answer.strip().upper(), source)


class ExactScorer(Scorer):
    """Free-form short answers: numbers by value ('3.0' == '3'), text case-insensitively."""

    prompt_template = f"{{question}}\\n{SHORT_INSTRUCTION}"
    rule_name = "exact"

    def prompt(self, s: BenchSample) -> str:
        return f"{s.question.strip()}\n{SHORT_INSTRUCTION}"

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        pred, source = open_answer(reply)
        return Judgement(pred, same_number_or_text(pred, s.answer), source)


class ChartQAScorer(Scorer):
    """Relaxed accuracy: 5% relative tolerance on numbers (x% = x/100), else exact; max over golds."""

    metric = "relaxed_accuracy"
    rule_name = "relaxed"
    breakdown_keys = ("type", "category")
    prompt_template = f"{{question}}\\n{SHORT_INSTRUCTION}"

    def prompt(self, s: BenchSample) -> str:
        return f"{s.question.strip()}\n{SHORT_INSTRUCTION}"

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        golds = s.meta.get("answers") or [s.answer]
        pred, ok = chartqa_correct(reply, [str(g) for g in golds])
        return Judgement(pred, ok, short_answer_from(reply)[1])


class MathVistaScorer(Scorer):
    """MathVista: extraction, normalisation by answer type and precision, exact comparison."""

    max_new_tokens = 32
    rule_name = "mathvista"
    breakdown_keys = ("question_type",)
    INSTRUCTIONS = {
        "multi_choice": MC_INSTRUCTION,
        "integer": "Answer with a single number.",
        "float": "Answer with a single number with {precision} decimal places.",
        "list": "Answer with a Python list.",
        "text": "Answer with a single word or phrase.",
    }
    prompt_template = "[Hint: {hint}\\n]{question}\\n[{A. choice}...\\n]" + " | ".join(f"{k}: {v}" for k, v in INSTRUCTIONS.items())

    @staticmethod
    def _fields(s: BenchSample) -> tuple[list[str], str, str, object]:
        choices = list(s.options.values())
        qtype = _meta_text(s, "question_type") or ("multi_choice" if choices else "free_form")
        atype = _meta_text(s, "answer_type") or ("text" if choices else "float")
        precision = _meta_text(s, "precision") or "0"
        return choices, qtype, atype, precision

    def prompt(self, s: BenchSample) -> str:
        choices, qtype, atype, precision = self._fields(s)
        hint = _meta_text(s, "hint")
        parts = [f"Hint: {hint}"] if hint else []
        parts.append(s.question.strip())
        if qtype == "multi_choice":
            parts += [options_block(s.options), self.INSTRUCTIONS["multi_choice"]]
        else:
            p = int(float(precision))
            parts.append(self.INSTRUCTIONS.get(atype, self.INSTRUCTIONS["text"]).format(precision=p))
        return "\n".join(parts)

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        choices, qtype, atype, precision = self._fields(s)
        pred, ok, source = mathvista_judgement(reply, s.answer, choices, qtype, atype, precision, judge)
        return Judgement(pred, ok, source)

    def aggregate(self, samples, judgements, seed: int = 0) -> Aggregate:
        agg = super().aggregate(samples, judgements, seed)
        agg.sub_scores.update(breakdown(samples, judgements, "task", "category", prefix="task:"))
        return agg


# ---------------------------------------------------------------- yes / no sets


YES_NO_INSTRUCTION = "Answer with yes or no."


class YesNoScorer(Scorer):
    """Replies read as yes / no / unknown; unknown is always wrong."""

    max_new_tokens = 8
    rule_name = "yesno"
    prompt_template = f"{{question}}\\n{YES_NO_INSTRUCTION}  (not appended when the question already asks for yes or no)"

    def prompt(self, s: BenchSample) -> str:
        q = s.question.strip()
        return q if "yes or no" in q.lower() else f"{q}\n{YES_NO_INSTRUCTION}"

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        pred, source = yes_no_from(reply)
        return Judgement(pred, pred == gold_yes_no(s.answer, f"sample {s.id}"), source)


def binary_metrics(pred_yes: np.ndarray, gold_yes: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    """F1 with 'yes' as the positive class, plus accuracy, precision, recall and yes-ratio."""
    tp = float(np.sum(pred_yes & gold_yes))
    fp = float(np.sum(pred_yes & ~gold_yes))
    fn = float(np.sum(~pred_yes & gold_yes))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = len(correct)
    return {
        "f1": f1,
        "accuracy": float(np.mean(correct)) if n else 0.0,
        "precision": precision,
        "recall": recall,
        "yes_ratio": float(np.mean(pred_yes)) if n else 0.0,
    }


class PopeScorer(YesNoScorer):
    """POPE: F1 (yes positive) overall and per split, with accuracy, precision, recall, yes-ratio."""

    metric = "f1"

    def aggregate(self, samples, judgements, seed: int = 0) -> Aggregate:
        pred = np.array([j.extracted == "yes" for j in judgements], dtype=bool)
        gold = np.array([gold_yes_no(s.answer, f"sample {s.id}") == "yes" for s in samples], dtype=bool)
        ok = np.array([j.correct for j in judgements], dtype=bool)
        split = [_meta_text(s, "split", "category") or "all" for s in samples]
        names = sorted(set(split))
        masks = [np.array([x == name for x in split]) for name in names]

        def f1s(idx):
            m = binary_metrics(pred[idx], gold[idx], ok[idx])["f1"]
            per = [binary_metrics(pred[idx][mask[idx]], gold[idx][mask[idx]], ok[idx][mask[idx]])["f1"] for mask in masks]
            return [m, *per]

        cis = bootstrap_intervals(len(samples), f1s, BOOTSTRAP_RESAMPLES, seed, strata=split)
        overall = binary_metrics(pred, gold, ok)
        main = Score(overall["f1"], len(samples), cis[0])
        subs = {"accuracy": Score.of_flags(ok).to_dict()}
        subs.update({k: {"score": round(v, 4), "n": len(samples)} for k, v in overall.items() if k not in ("f1", "accuracy")})
        subs["unknown_ratio"] = {"score": round(float(np.mean([j.extracted == "unknown" for j in judgements])), 4), "n": len(samples)}
        if len(names) > 1 or names != ["all"]:
            for name, mask, ci in zip(names, masks, cis[1:]):
                m = binary_metrics(pred[mask], gold[mask], ok[mask])
                entry = Score(m["f1"], int(mask.sum()), ci).to_dict()
                entry.update({k: round(v, 4) for k, v in m.items() if k != "f1"})
                subs[name] = entry
        return Aggregate(self.metric, main, subs)


MME_PERCEPTION = ("OCR", "artwork", "celebrity", "color", "count", "existence", "landmark", "position", "posters", "scene")
MME_COGNITION = ("code_reasoning", "commonsense_reasoning", "numerical_calculation", "text_translation")
_MME_CANON = {n.lower(): n for n in MME_PERCEPTION + MME_COGNITION}


def mme_subtask(category: str, where: str) -> str:
    key = category.strip().lower().replace(" ", "_")
    if key not in _MME_CANON:
        raise ValueError(f"{where}: MME category {category!r} is not one of the 14 subtasks {sorted(_MME_CANON.values())}")
    return _MME_CANON[key]


class MMEScorer(YesNoScorer):
    """MME: per subtask acc + acc+ (both questions of an image right), in points (max 200 each);
    perception sums 10 subtasks (max 2000), cognition 4 (max 800); the main score is their total."""

    metric = "mme_total"

    def aggregate(self, samples, judgements, seed: int = 0) -> Aggregate:
        # Unit = one image of one subtask (its two questions are resampled together).
        units: dict[tuple[str, str], list[bool]] = defaultdict(list)
        for s, j in zip(samples, judgements):
            sub = mme_subtask(_meta_text(s, "category"), f"sample {s.id}")
            image = _meta_text(s, "image_path", "image_ref", "question_id") or s.id
            units[(sub, image)].append(j.correct)
        keys = list(units)
        subtasks = sorted({k[0] for k in keys}, key=lambda x: (x not in MME_PERCEPTION, x))
        sub_id = np.array([subtasks.index(k[0]) for k in keys])
        q_right = np.array([sum(v) for v in units.values()], dtype=float)
        q_count = np.array([len(v) for v in units.values()], dtype=float)
        all_right = np.array([all(v) for v in units.values()], dtype=float)
        is_perc = np.array([s in MME_PERCEPTION for s in subtasks])
        K = len(subtasks)

        def scores(idx):
            right = np.bincount(sub_id[idx], q_right[idx], K)
            count = np.bincount(sub_id[idx], q_count[idx], K)
            plus = np.bincount(sub_id[idx], all_right[idx], K) / np.maximum(np.bincount(sub_id[idx], None, K), 1)
            per = 100 * (right / np.maximum(count, 1) + plus)
            perc, cog = per[is_perc].sum(), per[~is_perc].sum()
            return [perc + cog, perc, cog, *per]

        point = scores(np.arange(len(keys)))
        cis = bootstrap_intervals(len(keys), scores, BOOTSTRAP_RESAMPLES, seed, strata=sub_id.tolist())
        n_q = int(q_count.sum())
        main = Score(float(point[0]), n_q, cis[0])
        subs = {
            "perception": Score(float(point[1]), int(q_count[is_perc[sub_id]].sum()), cis[1]).to_dict(2),
            "cognition": Score(float(point[2]), int(q_count[~is_perc[sub_id]].sum()), cis[2]).to_dict(2),
        }
        for k, name in enumerate(subtasks):
            m = sub_id == k
            entry = Score(float(point[3 + k]), int(q_count[m].sum()), cis[3 + k]).to_dict(2)
            entry["acc"] = round(100 * q_right[m].sum() / q_count[m].sum(), 2)
            entry["acc_plus"] = round(100 * all_right[m].mean(), 2)
            subs[name] = entry
        subs["subtasks_present"] = {"score": K, "n": 14}
        return Aggregate(self.metric, main, subs)


class HallusionBenchScorer(YesNoScorer):
    """HallusionBench: aAcc (per question), qAcc (every question of a group right), fAcc (every
    question about a figure right). Groups follow lmms-eval: (category, subcategory, set_id, question_id)."""

    metric = "aAcc"

    @staticmethod
    def _ids(s: BenchSample) -> tuple[str, str, str, str, str]:
        cat = _meta_text(s, "category")
        sub = _meta_text(s, "subcategory", "l2-category", "l2_category")
        set_id, fig, q = (_meta_text(s, k) for k in ("set_id", "figure_id", "question_id"))
        if not (set_id and fig and q):
            # VLMEvalKit's TSV encodes them in the index: <cat>_<sub>_<x>_<set>_<figure>_<question>.
            parts = s.id.split("_")
            if len(parts) < 6:
                raise ValueError(
                    f"sample {s.id}: HallusionBench needs set_id, figure_id and question_id columns "
                    "or an index like VD_figure_0_1_0_2, found neither"
                )
            set_id, fig, q = parts[3], parts[4], parts[5]
        return cat, sub, set_id, fig, q

    def aggregate(self, samples, judgements, seed: int = 0) -> Aggregate:
        qgroups: dict[tuple, list[bool]] = defaultdict(list)
        fgroups: dict[tuple, list[bool]] = defaultdict(list)
        for s, j in zip(samples, judgements):
            cat, sub, set_id, fig, q = self._ids(s)
            qgroups[(cat, sub, set_id, q)].append(j.correct)
            fgroups[(cat, sub, set_id, fig)].append(j.correct)
        main = Score.of_flags(j.correct for j in judgements)
        subs = {
            "qAcc": Score.of_flags(all(v) for v in qgroups.values()).to_dict(),
            "fAcc": Score.of_flags(all(v) for v in fgroups.values()).to_dict(),
        }
        subs.update(breakdown(samples, judgements, "category", prefix="aAcc:"))
        return Aggregate(self.metric, main, subs)


# ---------------------------------------------------------------- procedural held-out set


class ProceduralScorer(Scorer):
    """The world's held-out questions: Solver prompt, the last `\\boxed{}` holding the right letter
    (or that option's text: `evaluation.answers.boxed_option`); without a box the reply is wrong."""

    max_new_tokens = 16  # room for the warm start's "\boxed{<option text>}" (a boxed letter is read too)
    rule_name = "boxed_choice"
    breakdown_keys = ("task_type",)
    prompt_template = "models.formats.solver_prompt(question, options): {question}\\nA. ...\\nD. ...\\nAnswer with one of the options in \\boxed{}."

    def prompt(self, s: BenchSample) -> str:
        return solver_prompt(s.question, list(s.options.values()))

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        letter, source = boxed_option(reply, s.options)
        return Judgement(letter, letter is not None and letter == s.answer, source)

    def aggregate(self, samples, judgements, seed: int = 0) -> Aggregate:
        agg = super().aggregate(samples, judgements, seed)
        agg.sub_scores.update(breakdown(samples, judgements, "kind", prefix="kind:"))
        return agg


class ProceduralAnswerScorer(ProceduralScorer):
    """The world's held-out yes/no or open (one word or number) questions, asked and read as the warm start
    teaches them: `solver_prompt(question, None, kind)`, the last `\\boxed{}` holding "yes"/"no" or the
    answer, compared after `models.formats.normalize_answer` ("Three." reads as "3")."""

    max_new_tokens = 12

    def __init__(self, kind: str) -> None:
        if kind not in ("yesno", "open"):
            raise ValueError(f"kind must be yesno or open, found {kind!r}")
        self.kind = kind
        self.rule_name = f"boxed_{kind}"
        self.prompt_template = f"models.formats.solver_prompt(question, None, {kind!r}): the question and its answer instruction"

    def prompt(self, s: BenchSample) -> str:
        return solver_prompt(s.question, None, self.kind)

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        value, _ = extract_answer(reply, None, self.kind)  # None: no box, or (yes/no) a box holding neither word
        return Judgement(value, value is not None and value == normalize_answer(s.answer), "boxed_answer" if value else "none")

    def aggregate(self, samples, judgements, seed: int = 0) -> Aggregate:
        """Besides accuracy, the two figures that tell a prior from an answer on a yes/no (or open) set:

        - `constant_answer`: the accuracy of always giving the set's most common right answer (for yes/no
          the share of "no" or of "yes"): what a model that never looks at the image scores;
        - `top_reply_share`: how many replies are the model's most frequent one. A share near 1 is a
          constant answer, whatever the accuracy next to it says.
        """
        agg = super().aggregate(samples, judgements, seed)
        golds = [normalize_answer(x.answer) for x in samples]
        if golds:
            common = Counter(golds).most_common(1)[0][0]
            agg.sub_scores["constant_answer"] = Score.of_flags(g == common for g in golds).to_dict()
            replies = [j.extracted or "(none)" for j in judgements]
            top = Counter(replies).most_common(1)[0][0]
            agg.sub_scores["top_reply_share"] = {**Score.of_flags(r == top for r in replies).to_dict(), "reply": top}
        return agg
