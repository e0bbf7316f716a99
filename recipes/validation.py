"""great-expectations suite for a task set: the gate before any Solver training.

Runs real GX validation (an ephemeral context, a pandas data source, a
whole-dataframe batch) on the task-set table and returns a readable report.
The Dagster asset check `task_set_is_valid` wraps it as a *blocking* check,
so a bad task set stops the iteration before the Solver trains on it.

Expectations (recipes.md, issue "Validation"):
- schema: the task-set columns are present;
- every well-formed row has exactly four options (A-D) (malformed and render_failed rows have none);
- every kept row's label is one of the option letters A-D;
- every kept row's c lies within the consistency band;
- no duplicate question (same image, same normalised question and options) among kept rows;
- every image reference resolves in the image pool (a dropped row may have no image: "");
- at least `min_kept` rows are kept (an empty set leaves the Solver nothing to learn from).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

REQUIRED_COLUMNS = ["task_id", "iteration", "image_id", "question", "options", "answers", "majority", "c", "kept", "reason"]


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


def _prepare(df: pd.DataFrame, resolvable: Callable[[str], bool]) -> pd.DataFrame:
    """Derived columns GX checks directly (option count, question key, image resolvable)."""
    out = df.copy()
    out["n_options"] = out["options"].map(lambda o: len(o) if o is not None else 0)
    out["question_key"] = [
        " ".join(str(q).lower().split()) + "|" + "|".join(str(x).lower() for x in (o if o is not None else []))
        for q, o in zip(out["question"], out["options"])
    ]
    # a dropped row without any image (MM-Zero: the program did not render) has nothing to resolve
    out["image_resolvable"] = [bool(resolvable(i)) if i or k else True for i, k in zip(out["image_id"], out["kept"].astype(bool))]
    out["kept"] = out["kept"].astype(bool)
    out["kept_count"] = out["kept"].astype(int)
    return out


def validate_task_set(
    df: pd.DataFrame, band: tuple[float, float], resolvable: Callable[[str], bool], min_kept: int = 1
) -> ValidationReport:
    """Validate a task-set table with great-expectations; never raises on bad data, reports it."""
    import great_expectations.expectations as gxe

    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:  # derived columns need these; report the schema failure without running the rest
        return ValidationReport(False, [{"expectation": "expect_table_columns_to_match_set", "column": "", "success": False,
                                         "unexpected_count": len(missing), "examples": missing}], len(df))
    data = _prepare(df, resolvable)
    kept = {"row_condition": "kept==True", "condition_parser": "pandas"}
    report = run_suite(data, [
        gxe.ExpectTableColumnsToMatchSet(column_set=REQUIRED_COLUMNS, exact_match=False),
        gxe.ExpectColumnValuesToBeBetween(column="n_options", min_value=4, max_value=4, row_condition='reason!="malformed" and reason!="render_failed"',
                                          condition_parser="pandas"),
        gxe.ExpectColumnValuesToBeInSet(column="majority", value_set=["A", "B", "C", "D"], **kept),
        gxe.ExpectColumnValuesToNotBeNull(column="majority", **kept),
        gxe.ExpectColumnValuesToBeBetween(column="c", min_value=band[0], max_value=band[1], **kept),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["image_id", "question_key"], **kept),
        gxe.ExpectColumnValuesToBeInSet(column="image_resolvable", value_set=[True]),
        gxe.ExpectColumnSumToBeBetween(column="kept_count", min_value=min_kept),
    ], len(df))
    report.next_step = "" if report.success else next_step(df, report, band)
    return report


def run_suite(data: pd.DataFrame, expectations: list, rows: int) -> ValidationReport:
    """Validate a prepared dataframe against GX expectations (ephemeral context, whole-dataframe batch)."""
    import great_expectations as gx

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
            "column": kw.get("column") or ",".join(kw.get("column_list") or []) or "",
            "success": bool(r.success),
            "unexpected_count": int(res.get("unexpected_count") or 0),
            "examples": [str(x) for x in (res.get("partial_unexpected_list") or [])[:3]],
        })
    return ValidationReport(bool(result.success), out, rows)


def next_step(df: pd.DataFrame, report: ValidationReport, band: tuple[float, float]) -> str:
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
        return (f"Empty iteration: no task fell in the consistency band [{band[0]}, {band[1]}] ({counts}). "
                "Rerun this partition with a wider band (band_low / band_high) or more images_per_iteration "
                "(unfreeze its config first, see below); nothing later can start until it has a Solver.")
    names = ", ".join(sorted(failing))
    return (f"The task set violates {names}: a labeling bug in the recipe, not a data problem. The rows are kept "
            "in the task set's parquet file for inspection; report it with this table.")
