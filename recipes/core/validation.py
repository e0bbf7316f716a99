"""great-expectations suite for a task set: the gate before any Solver training.

Runs real GX validation (an ephemeral context, a pandas data source, a
whole-dataframe batch) on the task-set table and returns a readable report.
The Dagster asset check `task_set_is_valid` wraps it as a *blocking* check,
so a bad task set stops the iteration before the Solver trains on it.

Expectations (recipes.md, issue "Validation"):
- schema: the task-set columns are present;
- every row's reason is one the recipe declared (core reasons, its keep rule's, its own);
- every row with a question has exactly four options (A-D) (dropped rows without one have none);
- every kept row's label is one of the option letters A-D;
- every kept row's value lies within the band the recipe's *declared* keep rule gives it
  (the loop applies the same rule, so a recipe can never keep what its gate rejects,
  and a labeling bug that keeps a row outside its band fails here);
- a kept row whose kind requires a kept sibling (MM-Zero: hard needs easy) has one;
- no duplicate question (same image, same normalised question and options) among kept rows;
- every image reference resolves in the iteration's images (a dropped row may have no image: "");
- at least `min_kept` rows are kept (an empty set leaves the Solver nothing to learn from).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from recipes.core.keep import KeepRule
from recipes.core.types import CORE_REASONS, TASK_COLUMNS

REQUIRED_COLUMNS = TASK_COLUMNS
# great-expectations logs every ephemeral context's temporary docs folder at INFO: one line per validation
logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass
class ValidationReport:
    success: bool
    results: list[dict]  # one per expectation: name, success, unexpected_count, examples
    rows: int
    next_step: str = ""  # what a user should do about a failure, in one paragraph ("" when it passed)

    def failures(self) -> list[dict]:
        return [r for r in self.results if not r["success"]]

    def markdown(self) -> str:
        lines = ["| expectation | column | ok | unexpected | examples |", "|---|---|---|---|---|"]
        for r in self.results:
            lines.append(f"| {r['expectation']} | {r['column']} | {'yes' if r['success'] else 'NO'} | {r['unexpected_count']} | {r['examples']} |")
        return "\n".join(lines)


def _prepare(df: pd.DataFrame, rule: KeepRule, resolvable: Callable[[str], bool]) -> pd.DataFrame:
    """Derived columns GX checks directly (option count, question key, the declared band, image resolvable)."""
    out = df.copy()
    out["kept"] = out["kept"].astype(bool)
    out["n_options"] = out["options"].map(lambda o: len(o) if o is not None else 0)
    out["question_key"] = [
        " ".join(str(q).lower().split()) + "|" + "|".join(str(x).lower() for x in (o if o is not None else []))
        for q, o in zip(out["question"], out["options"])
    ]
    # a dropped row without any image (MM-Zero: the program did not render) has nothing to resolve
    out["image_resolvable"] = [bool(resolvable(i)) if i or k else True for i, k in zip(out["image_id"], out["kept"])]
    rows = [{"meta": m, rule.column: v} for m, v in zip(out["meta"] if "meta" in out else [""] * len(out), out[rule.column])]
    # a kind the rule has no band for can never be kept: an empty band (+inf, -inf) fails any kept row
    bands = [rule.band_of(r) if rule.has_band(r) else (float("inf"), float("-inf")) for r in rows]
    out["keep_low"] = [b[0] for b in bands]
    out["keep_high"] = [b[1] for b in bands]
    out["keep_value"] = out[rule.column].astype(float)
    kept_siblings = {(rule.group(r), rule.kind(r)) for r, k in zip(rows, out["kept"]) if k}
    out["sibling_kept"] = [not (need := rule.requires.get(rule.kind(r))) or (rule.group(r), need) in kept_siblings
                           for r in rows]
    out["kept_count"] = out["kept"].astype(int)
    return out


def validate_task_set(
    df: pd.DataFrame, rule: KeepRule, resolvable: Callable[[str], bool], reasons: Sequence[str] = CORE_REASONS,
    min_kept: int = 1,
) -> ValidationReport:
    """Validate a task-set table against the recipe's declared rule and reasons; never raises on bad data, reports it."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:  # derived columns need these; report the schema failure without running the rest
        return ValidationReport(False, [{"expectation": "expect_table_columns_to_match_set", "column": "", "success": False,
                                         "unexpected_count": len(missing), "examples": missing}], len(df))
    data = _prepare(df, rule, resolvable)
    kept = {"row_condition": "kept==True", "condition_parser": "pandas"}
    report = run_suite(data, [
        gxe.ExpectTableColumnsToMatchSet(column_set=REQUIRED_COLUMNS, exact_match=False),
        gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=sorted(set(reasons) | set(CORE_REASONS))),
        gxe.ExpectColumnValuesToBeBetween(column="n_options", min_value=4, max_value=4, row_condition='question!=""',
                                          condition_parser="pandas"),
        gxe.ExpectColumnValuesToBeInSet(column="majority", value_set=["A", "B", "C", "D"], **kept),
        gxe.ExpectColumnValuesToNotBeNull(column="majority", **kept),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="keep_value", column_B="keep_low", or_equal=True, **kept),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="keep_high", column_B="keep_value", or_equal=True, **kept),
        gxe.ExpectColumnValuesToBeInSet(column="sibling_kept", value_set=[True], **kept),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["image_id", "question_key"], **kept),
        gxe.ExpectColumnValuesToBeInSet(column="image_resolvable", value_set=[True]),
        gxe.ExpectColumnSumToBeBetween(column="kept_count", min_value=min_kept),
    ], len(df))
    report.next_step = "" if report.success else next_step(df, report, rule)
    return report


def run_suite(data: pd.DataFrame, expectations: list, rows: int) -> ValidationReport:
    """Validate a prepared dataframe against GX expectations (ephemeral context, whole-dataframe batch)."""
    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # progress bars are cosmetic; older/newer GX spell this differently
        pass
    batch_def = context.data_sources.add_pandas("zeroforge").add_dataframe_asset("task_set").add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name="task_set"))
    for e in expectations:
        suite.add_expectation(e)
    result = batch_def.get_batch(batch_parameters={"dataframe": data}).validate(suite)
    out = []
    for r in result.results:
        kw = r.expectation_config.kwargs
        res = r.result or {}
        out.append({
            "expectation": r.expectation_config.type,
            "column": kw.get("column") or ",".join(kw.get("column_list") or [kw[k] for k in ("column_A", "column_B") if k in kw]),
            "success": bool(r.success),
            "unexpected_count": int(res.get("unexpected_count") or 0),
            "examples": [str(x) for x in (res.get("partial_unexpected_list") or [])[:3]],
        })
    return ValidationReport(bool(result.success), out, rows)


def next_step(df: pd.DataFrame, report: ValidationReport, rule: KeepRule) -> str:
    """What to do about a failed task set, from what its rows say (an empty iteration is the common case)."""
    failing = {r["expectation"] for r in report.failures()}
    reasons = df["reason"].value_counts().to_dict() if "reason" in df else {}
    kept = int(df["kept"].astype(bool).sum()) if "kept" in df else 0
    if failing <= {"expect_column_sum_to_be_between"} and kept == 0:
        if len(df) == 0:
            return ("Empty iteration: the task makers produced no tasks. Check that image_pool is materialized and "
                    "not empty, then rerun this partition.")
        if reasons.get("malformed", 0) == len(df):
            return (f"Empty iteration: all {len(df)} generated tasks were malformed (see the task set's `detail` "
                    "column): the task makers lost the output format. Rerun this partition with a lower task-maker "
                    "learning_rate (unfreeze its config first, see below), or rebuild the base model with a longer "
                    "warm start.")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
        bands = ", ".join(f"{k or 'all'} [{lo}, {hi}]" for k, (lo, hi) in rule.bands.items())
        return (f"Empty iteration: no task passed the recipe's keep rule ({rule.column} in {bands}; {counts}). "
                "Rerun this partition with a wider band or more images_per_iteration "
                "(unfreeze its config first, see below); nothing later can start until it has a Solver.")
    names = ", ".join(sorted(failing))
    return (f"The task set violates {names}: a labeling bug in the recipe, not a data problem. The rows are kept "
            "in the task set's parquet file for inspection; report it with this table.")
