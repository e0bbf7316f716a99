"""Custom sets: which rule scores each question, and how a user chooses another.

A benchmark name zeroforge does not know (`zeroforge eval --bench
MySet=/data/my.jsonl`) is a custom set. Each of its questions is scored by
one of `RULES`: multiple choice when it has options, the POPE yes/no rule
when its gold answer is yes or no, and otherwise exact match after the VQA
answer normalisation (`evaluation.vqa`). A `rule` column (TSV, parquet) or
key (JSONL) names the rule of one question; `--rule NAME=RULE` (the
`rule` argument of `evaluation.benchmarks.open_benchmark` and the `rules`
of `evaluate_model`) replaces the automatic choice for the questions
without options that name none. `CustomScorer` reads the rule back from
`sample.meta["rule"]`, where `resolve_rules` leaves it.

    spec, source, samples = load_benchmark("MySet", "/data/my.jsonl", rule="exact")
    samples[0].meta["rule"], spec.scorer.judge_reply(samples[0], "Two.")

`RULES_HELP` is the text `zeroforge eval --help` shows about it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from evaluation.answers import (
    Judge,
    choose_option,
    gold_yes_no,
    open_answer,
    relaxed_match,
    same_number_or_text,
    yes_no_from,
)
from evaluation.readers import BenchmarkFormatError, BenchSample, answer_letter, parse_list
from evaluation.scorers import (
    MC_INSTRUCTION,
    SHORT_INSTRUCTION,
    YES_NO_INSTRUCTION,
    Aggregate,
    Judgement,
    Scorer,
    _meta_text,
    breakdown,
    options_block,
)
from evaluation.vqa import normalise_vqa_answer

RULE_KEY = "rule"  # the column / JSONL key, and where the resolved rule is kept in meta
AUTO = "auto"
RULES = {
    "choice": "questions with options: the option the reply picks (a letter or an option's text in "
    "\\boxed{}, else one letter alone near the end, else one option's text)",
    "yesno": 'yes only if the word "yes" occurs and "no" does not, no for the reverse, else wrong (POPE)',
    "vqa": "exact match after the VQA answer normalisation: punctuation, articles, number words "
    '("A circle." = "circle", "Two" = "2", "dont" = "don\'t")',
    "exact": 'numbers by value ("3.0" = "3", "1,000" = "1000"), other text ignoring case and punctuation',
    "relaxed": "numbers within 5% of the gold (ChartQA's relaxed accuracy, x% = x/100), else exact text",
}
OPEN_RULES = tuple(r for r in RULES if r != "choice")  # what --rule may set


def _rule_lines(columns: int = 88) -> str:
    width = max(map(len, RULES))
    lead = " " * (4 + width + 2)
    return "\n".join(
        textwrap.fill(text, columns, initial_indent=f"    {name.ljust(width)}  ", subsequent_indent=lead)
        for name, text in RULES.items()
    )


RULES_HELP = f"""\
How answers are scored:
  Known benchmarks (MathVista, ChartQA, AI2D, ScienceQA, MMStar, RealWorldQA, MMMU,
  POPE, MME, HallusionBench, procedural) use their published rules. Any other NAME
  is a custom set, and each of its questions gets one rule:
{_rule_lines()}
  By default a question with options is choice, one whose gold answer is yes or no
  is yesno, any other is vqa. A `{RULE_KEY}` column (TSV, parquet) or key (JSONL) sets
  one question's rule; --rule NAME=RULE sets it for every question of NAME without
  options that sets none (RULE: {", ".join((AUTO, *OPEN_RULES))}).
  Each predictions file says, per question, which rule judged it (`rule`) and where
  in the reply the answer was found (`extracted_from`: boxed, answer_is, whole_reply,
  boxed_letter, boxed_option_text, letter, option_text, ...)."""

RULE_OPTION_HELP = (
    f"scoring rule for the questions of custom set NAME that have no options and no `{RULE_KEY}` column value: "
    f"{', '.join(OPEN_RULES)} (default {AUTO}: yesno for yes/no gold answers, else vqa); repeatable"
)


def parse_rule_arg(text: str) -> tuple[str, str]:
    """'MySet=exact' -> ('MySet', 'exact'); the rule is checked against `OPEN_RULES`."""
    name, sep, rule = text.partition("=")
    rule = rule.strip().lower()
    if not sep or not name.strip() or not rule:
        raise ValueError(f"expected --rule NAME=RULE (RULE one of {', '.join((AUTO, *OPEN_RULES))}), found {text!r}")
    check_open_rule(rule, f"--rule {text}")
    return name.strip(), rule


def check_open_rule(rule: str, where: str) -> str:
    if rule not in (AUTO, *OPEN_RULES):
        hint = " (questions with options are always choice)" if rule == "choice" else ""
        raise ValueError(f"{where}: rule {rule!r} is not one of {', '.join((AUTO, *OPEN_RULES))}{hint}")
    return rule


def auto_rule(s: BenchSample) -> str:
    """choice with options, yesno for a literal yes/no gold answer, else vqa.

    Only "yes"/"no" count here: a gold "1" or "0" in a custom set is more
    likely a count than HallusionBench's label.
    """
    if s.options:
        return "choice"
    if str(s.answer).strip().lower() in ("yes", "no"):
        return "yesno"
    return "vqa"


def resolve_rules(samples: Sequence[BenchSample], name: str, default: str | None = None) -> None:
    """Set `meta["rule"]` of every sample of custom set `name`, and check that its gold answer fits.

    Order: the row's own `rule` value; else, for a question without options,
    `default` (from --rule); else `auto_rule`. A multiple-choice gold answer
    becomes its option letter. Raises BenchmarkFormatError naming the sample.
    """
    default = check_open_rule((default or AUTO).strip().lower(), f"--rule {name}={default}")
    for s in samples:
        where = f"{name} sample {s.id}"
        own = _meta_text(s, RULE_KEY).lower()
        rule = own or (default if not s.options else AUTO)
        if rule == AUTO:
            rule = auto_rule(s)
        if rule not in RULES:
            raise BenchmarkFormatError(f"{where}: rule {own!r} is not one of {', '.join(RULES)} (or {AUTO})")
        if rule == "choice":
            if not s.options:
                raise BenchmarkFormatError(f"{where}: rule choice needs options, found none")
            s.answer = answer_letter(s.answer, s.options, False, where)
        elif s.options:
            raise BenchmarkFormatError(
                f"{where}: rule {rule} is for questions without options, this one has options {sorted(s.options)} "
                "(use rule choice, or drop the options)"
            )
        if rule == "yesno":
            try:
                gold_yes_no(s.answer, where)
            except ValueError as e:
                raise BenchmarkFormatError(str(e)) from e
        s.meta[RULE_KEY] = rule


def _golds(s: BenchSample) -> list[str]:
    """Every accepted gold answer: the answer, and those of an `answers` list (JSONL, parquet, or a TSV cell "['a', 'b']")."""
    extra = s.meta.get("answers")
    if isinstance(extra, str):  # a TSV cell is text; anything but a list is taken as one more answer
        try:
            extra = parse_list(extra) or []
        except BenchmarkFormatError:
            extra = [extra]
    return list(dict.fromkeys([str(s.answer), *(str(g) for g in extra or [])]))


class CustomScorer(Scorer):
    """A custom set: each sample is asked and judged by its own rule (`meta["rule"]`, see `resolve_rules`)."""

    prompt_template = (
        f"[Hint: {{hint}}\\n]{{question}}\\n then by rule: choice '{{A. option}}...\\n{MC_INSTRUCTION}' | "
        f"yesno '{YES_NO_INSTRUCTION}' (unless the question asks for yes or no) | vqa, exact, relaxed '{SHORT_INSTRUCTION}'"
    )

    def rule_of(self, s: BenchSample) -> str:
        rule = _meta_text(s, RULE_KEY)
        if rule not in RULES:
            raise ValueError(f"sample {s.id}: no scoring rule resolved (found {rule!r}); load custom sets with load_benchmark")
        return rule

    def prompt(self, s: BenchSample) -> str:
        hint = _meta_text(s, "hint")
        parts = [f"Hint: {hint}"] if hint else []
        q = s.question.strip()
        parts.append(q)
        rule = self.rule_of(s)
        if rule == "choice":
            if not s.meta.get("options_in_question"):
                parts.append(options_block(s.options))
            parts.append(MC_INSTRUCTION)
        elif rule == "yesno":
            if "yes or no" not in q.lower():
                parts.append(YES_NO_INSTRUCTION)
        else:
            parts.append(SHORT_INSTRUCTION)
        return "\n".join(parts)

    def judge_reply(self, s: BenchSample, reply: str, judge: Judge | None = None) -> Judgement:
        rule = self.rule_of(s)
        if rule == "choice":
            letter, source = choose_option(reply, s.options, judge, s.question)
            return Judgement(letter, letter is not None and letter == s.answer.strip().upper(), source)
        if rule == "yesno":
            pred, source = yes_no_from(reply)
            return Judgement(pred, pred == gold_yes_no(s.answer, f"sample {s.id}"), source)
        pred, source = open_answer(reply)
        golds = _golds(s)
        if rule == "vqa":
            norm = normalise_vqa_answer(pred)
            ok = norm != "" and any(norm == normalise_vqa_answer(g) for g in golds)
            return Judgement(norm, ok, source)
        if rule == "exact":
            return Judgement(pred, any(same_number_or_text(pred, g) for g in golds), source)
        candidates = dict.fromkeys([pred, (reply or "").strip()])  # as ChartQA: the short and the whole reply
        return Judgement(pred, any(relaxed_match(c, g) for c in candidates for g in golds if c), source)

    def aggregate(self, samples, judgements, seed: int = 0) -> Aggregate:
        agg = super().aggregate(samples, judgements, seed)
        if len({self.rule_of(s) for s in samples}) > 1:
            agg.sub_scores.update(breakdown(samples, judgements, RULE_KEY, prefix="rule:"))
        return agg
