"""Scorer aggregates (POPE, MME, HallusionBench, ...) and prompts, on hand-made samples and replies."""

import pytest

from evaluation.readers import BenchSample
from evaluation.scorers import (
    ChartQAScorer,
    HallusionBenchScorer,
    Judgement,
    MathVistaScorer,
    MMEScorer,
    MultipleChoiceScorer,
    PopeScorer,
    ProceduralScorer,
    binary_metrics,
)
from evaluation.stats import bootstrap_interval, bootstrap_intervals


def sample(i, answer, options=None, **meta):
    return BenchSample(str(i), [], f"Question {i}?", answer, options or {}, meta)


def run(scorer, samples, replies, seed=0):
    judgements = [scorer.judge_reply(s, r) for s, r in zip(samples, replies)]
    return judgements, scorer.aggregate(samples, judgements, seed)


POPE_CASES = [
    # (split, gold, reply)
    ("adversarial", "yes", "Yes"),
    ("adversarial", "yes", "no"),
    ("adversarial", "no", "yes, there is"),
    ("adversarial", "no", "No."),
    ("random", "yes", "yes"),
    ("random", "yes", "yes, but no"),  # unknown: not a yes, and wrong
    ("random", "no", "no"),
    ("random", "no", "There is no such object."),
]


def test_pope_f1_and_per_split_metrics():
    samples = [sample(i, g, category=split) for i, (split, g, _) in enumerate(POPE_CASES)]
    judgements, agg = run(PopeScorer(), samples, [r for *_, r in POPE_CASES])
    assert [j.extracted for j in judgements][5] == "unknown"
    # Overall by hand: tp=2, fp=1, fn=2 -> precision 2/3, recall 1/2, F1 4/7.
    assert agg.metric == "f1" and agg.main.n == 8
    assert agg.main.value == pytest.approx(4 / 7)
    assert agg.main.ci95[0] <= agg.main.value <= agg.main.ci95[1]
    subs = agg.sub_scores
    assert subs["accuracy"]["score"] == pytest.approx(5 / 8)
    assert subs["precision"]["score"] == pytest.approx(2 / 3, abs=1e-4)
    assert subs["recall"]["score"] == 0.5 and subs["yes_ratio"]["score"] == pytest.approx(3 / 8, abs=1e-4)
    assert subs["unknown_ratio"]["score"] == pytest.approx(1 / 8, abs=1e-4)
    adv, rnd = subs["adversarial"], subs["random"]
    assert (adv["score"], adv["accuracy"], adv["precision"], adv["recall"], adv["yes_ratio"], adv["n"]) == (0.5, 0.5, 0.5, 0.5, 0.5, 4)
    assert rnd["score"] == pytest.approx(2 / 3, abs=1e-4) and rnd["precision"] == 1.0 and rnd["recall"] == 0.5
    assert rnd["accuracy"] == 0.75 and rnd["yes_ratio"] == 0.25


def test_pope_interval_is_seeded():
    samples = [sample(i, g, category=split) for i, (split, g, _) in enumerate(POPE_CASES)]
    replies = [r for *_, r in POPE_CASES]
    assert run(PopeScorer(), samples, replies, seed=3)[1].main.ci95 == run(PopeScorer(), samples, replies, seed=3)[1].main.ci95


def test_binary_metrics_without_positive_predictions():
    import numpy as np

    m = binary_metrics(np.array([False, False]), np.array([True, False]), np.array([False, True]))
    assert m == {"f1": 0.0, "accuracy": 0.5, "precision": 0.0, "recall": 0.0, "yes_ratio": 0.0}


def test_mme_acc_plus_and_sums():
    rows = [
        # (subtask, image, gold, reply)
        ("color", "c1", "Yes", "Yes"),
        ("color", "c1", "No", "No"),  # image c1: both right
        ("color", "c2", "Yes", "yes"),
        ("color", "c2", "No", "Yes"),  # image c2: one right
        ("code_reasoning", "r1", "Yes", "Yes"),
        ("code_reasoning", "r1", "No", "yes, but no"),
    ]
    samples = [sample(i, g, category=c, image_ref=img) for i, (c, img, g, _) in enumerate(rows)]
    _, agg = run(MMEScorer(), samples, [r for *_, r in rows])
    subs = agg.sub_scores
    # color: acc 3/4 = 75, acc+ 1/2 = 50 -> 125; code_reasoning: acc 50, acc+ 0 -> 50.
    assert subs["color"]["acc"] == 75.0 and subs["color"]["acc_plus"] == 50.0 and subs["color"]["score"] == 125.0
    assert subs["code_reasoning"]["score"] == 50.0
    assert subs["perception"]["score"] == 125.0 and subs["cognition"]["score"] == 50.0
    assert agg.metric == "mme_total" and agg.main.value == 175.0 and agg.main.n == 6
    assert agg.main.ci95[0] <= 175.0 <= agg.main.ci95[1]
    assert subs["subtasks_present"]["score"] == 2


def test_mme_rejects_unknown_subtask():
    with pytest.raises(ValueError, match="not one of the 14 subtasks"):
        run(MMEScorer(), [sample(0, "Yes", category="colour")], ["Yes"])


def test_hallusionbench_question_and_figure_groups():
    rows = [
        # (figure, question, correct reply?)
        ("0", "0", True),
        ("0", "1", False),
        ("1", "0", True),
        ("2", "0", True),
    ]
    samples = [sample(i, "1", category="VD", subcategory="chart", set_id="0", figure_id=f, question_id=q)
               for i, (f, q, _) in enumerate(rows)]
    replies = ["Yes" if ok else "No" for *_, ok in rows]
    _, agg = run(HallusionBenchScorer(), samples, replies)
    assert agg.metric == "aAcc" and agg.main.value == 0.75 and agg.main.n == 4
    # question groups: q0 over figures 0,1,2 all right; q1 wrong -> 1/2. Figures: 0 wrong, 1 and 2 right -> 2/3.
    assert agg.sub_scores["qAcc"]["score"] == 0.5 and agg.sub_scores["qAcc"]["n"] == 2
    assert agg.sub_scores["fAcc"]["score"] == pytest.approx(2 / 3, abs=1e-4) and agg.sub_scores["fAcc"]["n"] == 3


def test_hallusionbench_ids_from_vlmevalkit_index():
    samples = [BenchSample("VD_figure_x_0_1_0", [], "q", "Yes", {}, {"category": "VD"}),
               BenchSample("VD_figure_x_0_1_1", [], "q", "No", {}, {"category": "VD"})]
    _, agg = run(HallusionBenchScorer(), samples, ["Yes", "Yes"])
    assert agg.sub_scores["fAcc"] == {"score": 0.0, "n": 1, "ci95": agg.sub_scores["fAcc"]["ci95"]}
    assert agg.sub_scores["qAcc"]["n"] == 2 and agg.sub_scores["qAcc"]["score"] == 0.5


def test_multiple_choice_prompt_and_breakdown():
    opts = {"A": "cat", "B": "dog"}
    samples = [sample(0, "A", opts, category="animals", hint="a pet"), sample(1, "B", opts, category="animals"),
               sample(2, "7", category="count")]
    scorer = MultipleChoiceScorer()
    p = scorer.prompt(samples[0])
    assert p.splitlines() == ["Hint: a pet", "Question 0?", "A. cat", "B. dog", "Answer with the option letter."]
    assert scorer.prompt(samples[2]).endswith("Answer with a single word or number.")
    judgements, agg = run(scorer, samples, ["(A)", "cat", "The answer is 7.0"])
    assert [j.correct for j in judgements] == [True, False, True]
    assert agg.main.value == pytest.approx(2 / 3) and agg.sub_scores["animals"]["n"] == 2 and agg.sub_scores["count"]["score"] == 1.0


def test_options_already_in_question_are_not_repeated():
    s = BenchSample("1", [], "Which?\nOptions: A: x, B: y", "A", {"A": "x", "B": "y"}, {"options_in_question": True})
    assert MultipleChoiceScorer().prompt(s).count("A: x") == 1 and "A. x" not in MultipleChoiceScorer().prompt(s)


def test_chartqa_uses_every_gold_answer():
    s = sample(0, "12", answers=["12", "twelve"], type="human_test")
    judgements, agg = run(ChartQAScorer(), [s, sample(1, "40%", type="augmented_test")], ["Twelve", "0.41"])
    assert [j.correct for j in judgements] == [True, True] and set(agg.sub_scores) == {"human_test", "augmented_test"}


def test_mathvista_prompts_follow_question_type():
    scorer = MathVistaScorer()
    mc = sample(0, "4", {"A": "3", "B": "4"}, question_type="multi_choice", answer_type="text")
    fl = sample(1, "1.45", question_type="free_form", answer_type="float", precision="2.0")
    assert scorer.prompt(mc).endswith("A. 3\nB. 4\nAnswer with the option letter.")
    assert scorer.prompt(fl).endswith("Answer with a single number with 2 decimal places.")
    assert [j.correct for j in run(scorer, [mc, fl], ["(B)", "1.449"])[0]] == [True, True]


def test_procedural_needs_a_boxed_answer():
    opts = dict(zip("ABCD", ["red", "blue", "green", "pink"]))
    samples = [sample(i, "B", opts, task_type=t, kind="shapes") for i, t in enumerate(["color", "color", "shape"])]
    scorer = ProceduralScorer()
    assert scorer.prompt(samples[0]).endswith("Answer with one of the options in \\boxed{}.")
    judgements, agg = run(scorer, samples, ["\\boxed{B}", "B", "\\boxed{(b)}"])
    assert [j.correct for j in judgements] == [True, False, True]
    assert [j.extracted_from for j in judgements] == ["boxed_letter", "none", "boxed_letter"]
    assert agg.sub_scores["color"]["score"] == 0.5 and agg.sub_scores["shape"]["n"] == 1 and "kind:shapes" in agg.sub_scores


@pytest.mark.parametrize(
    "reply, extracted, correct, source",
    [
        ("blue \\boxed{B}", "B", True, "boxed_letter"),
        ("\\boxed{blue}", "B", True, "boxed_option_text"),  # the option's text, mapped to its letter
        ("\\boxed{Blue.}", "B", True, "boxed_option_text"),
        ("\\boxed{green}", "C", False, "boxed_option_text"),
        ("\\boxed{purple}", None, False, "none"),
        ("blue", None, False, "none"),  # no box, no answer
    ],
)
def test_procedural_accepts_a_boxed_option_text(reply, extracted, correct, source):
    s = sample(0, "B", dict(zip("ABCD", ["red", "blue", "green", "pink"])), task_type="color")
    assert ProceduralScorer().judge_reply(s, reply) == Judgement(extracted, correct, source)


def test_procedural_yes_no_and_open_sets_are_asked_and_read_as_the_warm_start_teaches():
    from evaluation.benchmarks import open_benchmark
    from models.formats import solver_prompt

    yn, op = open_benchmark("procedural_yesno", "20"), open_benchmark("procedural_open", "20")
    assert {s.answer for s in yn.samples} == {"yes", "no"} and all(not s.options for s in yn.samples + op.samples)
    assert not ({s.answer for s in op.samples} & {"yes", "no", "A", "B", "C", "D"}) and len(op.samples) >= 20
    assert "yes/no questions" in yn.source and "open questions" in op.source
    s = yn.samples[0]
    assert yn.spec.scorer.prompt(s) == solver_prompt(s.question, None, "yesno")
    other = "no" if s.answer == "yes" else "yes"
    got = [yn.spec.scorer.judge_reply(s, r) for r in (f"\\boxed{{{s.answer}}}", f"\\boxed{{{other}}}", "\\boxed{maybe}", s.answer)]
    assert [(j.correct, j.extracted_from) for j in got] == [(True, "boxed_answer"), (False, "boxed_answer"), (False, "none"), (False, "none")]
    three = sample(0, "3")
    scorer = op.spec.scorer
    assert [scorer.judge_reply(three, r).correct for r in ("\\boxed{Three.}", "\\boxed{3}", "\\boxed{4}", "3")] == [True, True, False, False]
    assert {s.meta["task_type"] for s in op.samples} >= {"color", "count"}
    with pytest.raises(ValueError, match="yesno or open"):
        type(scorer)("mc")


def test_a_constant_yes_no_answer_is_named_beside_its_accuracy():
    """55% on yes/no by always saying "no" looks above chance; the sub-scores say it is the set's prior."""
    from evaluation.benchmarks import open_benchmark
    from orchestration.demo import constant_answer_note

    yn = open_benchmark("procedural_yesno", "20")
    scorer, samples = yn.spec.scorer, yn.samples
    share_no = sum(x.answer == "no" for x in samples) / len(samples)
    always_no = [scorer.judge_reply(x, "\\boxed{no}") for x in samples]
    agg = scorer.aggregate(samples, always_no)
    assert agg.main.value == pytest.approx(share_no)
    assert agg.sub_scores["top_reply_share"]["score"] == 1.0 and agg.sub_scores["top_reply_share"]["reply"] == "no"
    assert agg.sub_scores["constant_answer"]["score"] == pytest.approx(max(share_no, 1 - share_no), abs=1e-4)
    right = scorer.aggregate(samples, [scorer.judge_reply(x, f"\\boxed{{{x.answer}}}") for x in samples])
    assert right.main.value == 1.0 and right.sub_scores["top_reply_share"]["score"] < 0.95

    class Result:  # what the demo reads of a benchmark result
        def __init__(self, agg):
            self.score, self.sub_scores = agg.main.value, agg.sub_scores

    note = constant_answer_note("base", "procedural_yesno", Result(agg))
    assert "answers 'no' to 100% of procedural_yesno" in note and "answer prior" in note
    assert constant_answer_note("base", "procedural_yesno", Result(right)) == ""


def test_judgements_say_where_the_answer_was_found():
    opts = {"A": "cat", "B": "dog"}
    mc = MultipleChoiceScorer()
    assert mc.judge_reply(sample(0, "B", opts), "\\boxed{dog}") == Judgement("B", True, "boxed_option_text")
    assert mc.judge_reply(sample(1, "B", opts), "(B)") == Judgement("B", True, "letter")
    assert mc.judge_reply(sample(2, "a circle"), "a circle \\boxed{B}") == Judgement("a circle", True, "text_beside_boxed_letter")
    assert PopeScorer().judge_reply(sample(3, "yes"), "Yes, it is.") == Judgement("yes", True, "yes_no_words")
    assert ChartQAScorer().judge_reply(sample(4, "12"), "The answer is 12") == Judgement("12", True, "answer_is")
    assert (mc.rule_of(sample(0, "B", opts)), mc.rule_of(sample(2, "x")), PopeScorer().rule_of(sample(3, "yes"))) == ("choice", "exact", "yesno")


def test_stratified_bootstrap_keeps_stratum_sizes():
    sizes = []

    def stat(idx):
        sizes.append(int((idx < 3).sum()))
        return float(idx.mean())

    lo, hi = bootstrap_interval(10, stat, n_resamples=50, seed=1, strata=[0, 0, 0] + [1] * 7)
    assert set(sizes) == {3} and lo <= hi
    assert bootstrap_intervals(10, lambda idx: [idx.mean(), idx.max()], n_resamples=20)[1][1] == 9.0
