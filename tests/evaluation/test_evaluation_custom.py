"""Custom sets: the rule each question gets, how a file or --rule chooses another, and what each rule accepts."""

import json

import pytest
from test_evaluation_readers import MC_ROWS, png, write_tsv

from evaluation.benchmarks import load_benchmark, open_benchmark
from evaluation.custom import (
    OPEN_RULES,
    RULE_OPTION_HELP,
    RULES,
    RULES_HELP,
    CustomScorer,
    auto_rule,
    parse_rule_arg,
    resolve_rules,
)
from evaluation.readers import ON_BAD_IMAGE_HELP, BenchmarkFormatError, BenchSample


def write_set(folder, records, name="custom.jsonl"):
    (folder / "img").mkdir(exist_ok=True)
    (folder / "img" / "red.png").write_bytes(png("red"))
    path = folder / name
    path.write_text("\n".join(json.dumps({"image": "img/red.png", **r}) for r in records) + "\n")
    return path


MIXED = [
    {"id": "mc", "question": "Color?", "answer": "red", "options": ["red", "blue"]},
    {"id": "yn", "question": "Is it red?", "answer": "Yes"},
    {"id": "open", "question": "What shape?", "answer": "a circle"},
    {"id": "count", "question": "How many?", "answer": "2"},
    {"id": "own", "question": "Area?", "answer": "100", "rule": "relaxed"},
]


def test_default_rules_per_question(tmp_path):
    spec, _, samples = load_benchmark("MySet", write_set(tmp_path, MIXED))
    assert isinstance(spec.scorer, CustomScorer)
    assert {s.id: s.meta["rule"] for s in samples} == {"mc": "choice", "yn": "yesno", "open": "vqa", "count": "vqa", "own": "relaxed"}
    assert samples[0].answer == "A"  # option text -> letter


def test_rule_option_sets_the_open_questions_only(tmp_path):
    _, _, samples = load_benchmark("MySet", write_set(tmp_path, MIXED), rule="exact")
    # with options: always choice; a row's own rule wins; every other question takes --rule
    assert {s.id: s.meta["rule"] for s in samples} == {"mc": "choice", "yn": "exact", "open": "exact", "count": "exact", "own": "relaxed"}


def test_rule_column_in_a_tsv(tmp_path):
    rows = [{"index": 1, "image": MC_ROWS[0]["image"], "question": "How many?", "answer": "3", "rule": "exact"},
            {"index": 2, "image": "1", "question": "Is it red?", "answer": "yes", "rule": ""}]
    _, _, samples = load_benchmark("Counts", write_tsv(tmp_path / "counts.tsv", rows))
    assert [s.meta["rule"] for s in samples] == ["exact", "yesno"]


@pytest.mark.parametrize(
    "record, message",
    [
        ({"id": "a", "question": "q", "answer": "x", "rule": "fuzzy"}, "sample a: rule 'fuzzy' is not one of choice, yesno, vqa, exact, relaxed"),
        ({"id": "a", "question": "q", "answer": "x", "rule": "choice"}, "sample a: rule choice needs options"),
        ({"id": "a", "question": "q", "answer": "red", "options": ["red", "blue"], "rule": "vqa"}, "rule vqa is for questions without options"),
        ({"id": "a", "question": "q", "answer": "maybe", "rule": "yesno"}, "sample a: expected a yes/no gold answer"),
    ],
)
def test_bad_rules_name_the_sample(tmp_path, record, message):
    with pytest.raises(BenchmarkFormatError, match=message):
        load_benchmark("MySet", write_set(tmp_path, [record]))


def test_rule_for_a_known_benchmark_is_refused(tmp_path):
    with pytest.raises(ValueError, match="MMStar is scored by its published rule"):
        open_benchmark("MMStar", tmp_path, rule="vqa")


@pytest.mark.parametrize("text, expected", [("MySet=exact", ("MySet", "exact")), (" my = VQA ", ("my", "vqa")), ("x=auto", ("x", "auto"))])
def test_parse_rule_arg(text, expected):
    assert parse_rule_arg(text) == expected


@pytest.mark.parametrize("text, message", [("MySet", "expected --rule NAME=RULE"), ("MySet=choice", "always choice"),
                                           ("a=b", "rule 'b' is not one of")])
def test_parse_rule_arg_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_rule_arg(text)


def sample(rule, answer, options=None, question="Q?", **meta):
    s = BenchSample("s", [], question, answer, options or {}, meta)
    resolve_rules([s], "T", None) if rule is None else s.meta.update(rule=rule)
    return s


@pytest.mark.parametrize(
    "rule, gold, reply, extracted, correct, source",
    [
        # vqa: exact after the VQA normalisation
        ("vqa", "circle", "A circle.", "circle", True, "whole_reply"),
        ("vqa", "a circle", "circle", "circle", True, "whole_reply"),
        ("vqa", "2", "Two", "2", True, "whole_reply"),
        ("vqa", "dog", "The answer is a dog.", "dog", True, "answer_is"),
        ("vqa", "don't", "dont", "don't", True, "whole_reply"),
        ("vqa", "1000", "1,000", "1000", True, "whole_reply"),
        ("vqa", "3", "3.0", "3.0", False, "whole_reply"),  # strings, not values: use rule exact
        ("vqa", "yes", "yes, it does", "yes it does", False, "whole_reply"),  # yes/no golds take yesno by default
        ("vqa", "circle", "circle \\boxed{B}", "circle", True, "text_beside_boxed_letter"),
        ("vqa", "circle", "\\boxed{circle}", "circle", True, "boxed"),
        # yesno: POPE's rule
        ("yesno", "yes", "yes, it does", "yes", True, "yes_no_words"),
        ("yesno", "No", "No, there is none.", "no", True, "yes_no_words"),
        ("yesno", "yes", "yes and no", "unknown", False, "none"),
        # exact: numbers by value
        ("exact", "3", "3.0", "3.0", True, "whole_reply"),
        ("exact", "1000", "1,000", "1,000", True, "whole_reply"),
        ("exact", "circle", "a circle", "a circle", False, "whole_reply"),
        # relaxed: 5% on numbers
        ("relaxed", "100", "103", "103", True, "whole_reply"),
        ("relaxed", "100", "106", "106", False, "whole_reply"),
    ],
)
def test_rules_judge_replies(rule, gold, reply, extracted, correct, source):
    j = CustomScorer().judge_reply(sample(rule, gold), reply)
    assert (j.extracted, j.correct, j.extracted_from) == (extracted, correct, source)


def test_choice_rule_maps_boxed_option_text():
    s = sample(None, "B", {"A": "red", "B": "blue"})
    assert s.meta["rule"] == "choice"
    j = CustomScorer().judge_reply(s, "\\boxed{blue}")
    assert (j.extracted, j.correct, j.extracted_from) == ("B", True, "boxed_option_text")


@pytest.mark.parametrize("answers", [["cat"], "['cat', 'feline']", "cat"])
def test_vqa_accepts_any_listed_gold_answer(answers):
    s = sample("vqa", "kitten", answers=answers)  # a list (JSONL, parquet) or a TSV cell's text
    assert CustomScorer().judge_reply(s, "A cat.").correct and CustomScorer().judge_reply(s, "kitten").correct
    assert not CustomScorer().judge_reply(s, "c").correct  # a TSV cell is not read letter by letter


def test_prompts_follow_the_rule():
    scorer = CustomScorer()
    assert scorer.prompt(sample("choice", "A", {"A": "x", "B": "y"}, hint="look")).splitlines() == [
        "Hint: look", "Q?", "A. x", "B. y", "Answer with the option letter."]
    assert scorer.prompt(sample("yesno", "yes")).splitlines() == ["Q?", "Answer with yes or no."]
    assert scorer.prompt(sample("yesno", "yes", question="Red? Answer yes or no.")) == "Red? Answer yes or no."
    assert scorer.prompt(sample("vqa", "2")).splitlines() == ["Q?", "Answer with a single word or number."]


def test_unresolved_sample_is_a_clear_error():
    with pytest.raises(ValueError, match="no scoring rule resolved"):
        CustomScorer().prompt(BenchSample("s", [], "q", "a"))


def test_mixed_set_reports_a_score_per_rule(tmp_path):
    _, _, samples = load_benchmark("MySet", write_set(tmp_path, MIXED))
    replies = {"mc": "\\boxed{red}", "yn": "Yes, it is.", "open": "Circle.", "count": "three", "own": "99"}
    scorer = CustomScorer()
    judgements = [scorer.judge_reply(s, replies[s.id]) for s in samples]
    assert [j.correct for j in judgements] == [True, True, True, False, True]
    agg = scorer.aggregate(samples, judgements)
    assert agg.main.value == pytest.approx(4 / 5) and agg.main.n == 5
    assert agg.sub_scores["rule:vqa"]["n"] == 2 and agg.sub_scores["rule:vqa"]["score"] == 0.5
    assert agg.sub_scores["rule:choice"]["score"] == 1.0


def test_auto_rule():
    assert [auto_rule(BenchSample("s", [], "q", a, o)) for a, o in [("A", {"A": "x"}), ("no", {}), ("1", {}), ("cat", {})]] == [
        "choice", "yesno", "vqa", "vqa"]


def test_help_names_every_rule_and_how_to_choose():
    for name in RULES:
        assert f"    {name}" in RULES_HELP
    assert "--rule NAME=RULE" in RULES_HELP and "`rule` column" in RULES_HELP and "extracted_from" in RULES_HELP
    assert all(r in RULE_OPTION_HELP for r in OPEN_RULES) and "choice" not in OPEN_RULES
    assert max(map(len, RULES_HELP.splitlines())) <= 88
    assert "%" not in RULE_OPTION_HELP and "%" not in ON_BAD_IMAGE_HELP  # argparse %-formats option help
