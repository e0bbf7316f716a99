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
    import great_expectations as gx
    import great_expectations.expectations as gxe

    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:  # derived columns need these; report the schema failure without running the rest
        return ValidationReport(False, [{"expectation": "expect_table_columns_to_match_set", "column": "", "success": False,
                                         "unexpected_count": len(missing), "examples": missing}], len(df))
    data = _prepare(df, resolvable)
    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # progress bars are cosmetic; older/newer GX spell this differently
        pass
    batch_def = context.data_sources.add_pandas("zeroforge").add_dataframe_asset("task_set").add_batch_definition_whole_dataframe("all")
    kept = {"row_condition": "kept==True", "condition_parser": "pandas"}
    suite = context.suites.add(gx.ExpectationSuite(name="task_set"))
    for e in [
        gxe.ExpectTableColumnsToMatchSet(column_set=REQUIRED_COLUMNS, exact_match=False),
        gxe.ExpectColumnValuesToBeBetween(column="n_options", min_value=4, max_value=4, row_condition='reason!="malformed" and reason!="render_failed"',
                                          condition_parser="pandas"),
        gxe.ExpectColumnValuesToBeInSet(column="majority", value_set=["A", "B", "C", "D"], **kept),
        gxe.ExpectColumnValuesToNotBeNull(column="majority", **kept),
        gxe.ExpectColumnValuesToBeBetween(column="c", min_value=band[0], max_value=band[1], **kept),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["image_id", "question_key"], **kept),
        gxe.ExpectColumnValuesToBeInSet(column="image_resolvable", value_set=[True]),
        gxe.ExpectColumnSumToBeBetween(column="kept_count", min_value=min_kept),
    ]:
        suite.add_expectation(e)
    result = batch_def.get_batch(batch_parameters={"dataframe": data}).validate(suite)
    rows = []
    for r in result.results:
        kw = r.expectation_config.kwargs
        res = r.result or {}
        rows.append({
            "expectation": r.expectation_config.type,
            "column": kw.get("column") or ",".join(kw.get("column_list") or []) or "",
            "success": bool(r.success),
            "unexpected_count": int(res.get("unexpected_count") or 0),
            "examples": [str(x) for x in (res.get("partial_unexpected_list") or [])[:3]],
        })
    return ValidationReport(bool(result.success), rows, len(df))
