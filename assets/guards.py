"""The guards as Dagster asset checks: each iteration's task set and scores, and the base model, checked for failure.

Per iteration (`recipes.core.guards` computes, this module reports):

    task_set:          pseudo_labels_are_trustworthy (label_quality), task_makers_keep_the_format (task_format)
    benchmark_scores:  solver_did_not_collapse (answer_collapse), solver_did_not_unlearn (flip_rate)
    base_model:        base_model_is_above_chance (base_above_chance)

Every check is declared blocking; it fails with ERROR severity (downstream assets of the run do not
execute: a task set with untrustworthy labels never trains the Solver) when its guard is in the recipe
config's `guards.blocking` list, else with WARN. Each verdict is also written to the iteration's store
(`IterationStore.guard_path`), where the chain sensor and the next iteration's `iteration_config` read it:
neither goes on after a failed blocking guard unless told to accept it (`accept_failed_guards`).
"""

import dagster as dg
import pandas as pd

from assets.iteration import write_png
from assets.resources import ComputeResource, ZeroforgeHome
from assets.store import IterationStore, iteration_key, parse_iteration
from evaluation.multiple_choice import image_dependence
from evaluation.plots import answer_histogram, png_markdown
from evaluation.report import EvalReport, paired_change
from models.files import atomic_write_json
from models.generation import TransformersEngine
from models.loading import load_vlm
from recipes.core import guards as g
from recipes.core.bootstrap import BASE_CARD, labeled_examples
from recipes.core.config import LoopConfig

# check name -> (guard name, what it measures and what to do when it fails)
CHECKS = {
    "pseudo_labels_are_trustworthy": ("label_quality", "Pseudo-label accuracy on the labeled audit slice, labeled by the loop's "
                                      "own code, with its 95% interval: fails when the upper bound is not above chance, when "
                                      "it fell significantly from the parent iteration's, or when labels disagree with the "
                                      "Solver's own votes (a labeling bug). Then: fix the labeling, or rerun with a higher "
                                      "band_low or from a stronger parent."),
    "task_makers_keep_the_format": ("task_format", "The task makers' malformed rate and the share of degenerate tasks "
                                    "(duplicates, answers given away in the question). Then: lower the task makers' "
                                    "learning_rate or rebuild the base with a longer warm start."),
    "solver_did_not_collapse": ("answer_collapse", "Share of the most frequent held-out answer and the answer entropy, "
                                "against the base's and the parent's: fails when one answer covers most questions or the "
                                "entropy fell below guards.min_entropy_ratio of theirs. Then: do not chain from this "
                                "checkpoint; rerun with fewer Solver steps, a lower learning_rate or a narrower band."),
    "solver_did_not_unlearn": ("flip_rate", "Held-out questions flipped right -> wrong vs wrong -> right against the parent "
                               "and, from iteration 2, against the base (exact McNemar test), on the 4-option held-out set "
                               "and on every configured benchmark (each answer form): fails when the Solver loses "
                               "significantly more than it gains on any of them (Bonferroni over the sets). Then: keep the "
                               "parent; rerun with fewer steps or a higher band floor."),
}
BASE_CHECK = ("base_model_is_above_chance", "The base model's held-out accuracy with its 95% interval: fails when the "
              "lower bound is not above chance (a base at chance cannot self-evolve). Then: rebuild it with more "
              "warm-start steps or point model_path at a stronger checkpoint.")


def check_result(store: IterationStore, recipe: str, partition: str | None, result: g.GuardResult, blocking: list[str],
                 extra: dict | None = None) -> dg.AssetCheckResult:
    """Record the verdict where the chain reads it, and report it as the check's result."""
    result.blocking = result.name in blocking
    atomic_write_json(store.guard_path(recipe, partition, result.name), result.to_dict())
    severity = dg.AssetCheckSeverity.ERROR if result.blocking else dg.AssetCheckSeverity.WARN
    md = {k: (dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v) for k, v in result.metrics.items()}
    return dg.AssetCheckResult(passed=result.passed, severity=severity, description=result.message,
                               metadata={"guard": result.name, "blocking": result.blocking, "message": result.message,
                                         **md, **(extra or {})})


def failed_blocking_guards(store: IterationStore, recipe: str, partition: str | None) -> dict[str, str]:
    """{guard: message} of the blocking guards this iteration (or the foundation, partition None) failed."""
    return {name: r["message"] for name, r in store.guard_results(recipe, partition).items()
            if not r["passed"] and r.get("blocking")}


def _parent_key(partition: str) -> str | None:
    n = parse_iteration(partition)
    return iteration_key(n - 1) if n > 1 else None


def benchmark_changes(store: IterationStore, recipe: str, partition: str) -> dict[str, dict]:
    """{benchmark: paired change against the parent, "<benchmark> vs base": against the base (from iteration 2)}
    of the configured benchmarks both reports hold."""
    cur_dir, prev_dir, base_dir = store.eval_dir(recipe, partition), store.parent_eval_dir(recipe, partition), store.base_eval_dir(recipe)
    if not (cur_dir / "report.json").is_file():
        return {}
    cur = EvalReport.load(cur_dir)
    out: dict[str, dict] = {}
    for before_dir, suffix in ((prev_dir, ""), (base_dir, " vs base")):
        if (suffix and before_dir == prev_dir) or not (before_dir / "report.json").is_file():
            continue  # iteration 1: the parent is the base
        before = EvalReport.load(before_dir)
        for name, r in cur.results.items():
            ch = paired_change(before.results[name], r) if name in before.results else None
            if ch:
                out[name + suffix] = {k: ch[k] for k in ("n", "gained", "lost")}
    return out


def build_guard_checks(recipe: str, task_set: dg.AssetsDefinition, benchmark_scores: dg.AssetsDefinition, parts,
                       config_in: dict) -> list:
    @dg.asset_check(asset=task_set, name="pseudo_labels_are_trustworthy", blocking=True, partitions_def=parts,
                    additional_ins=config_in, description=CHECKS["pseudo_labels_are_trustworthy"][1])
    def labels(context: dg.AssetCheckExecutionContext, loop: LoopConfig, home: ZeroforgeHome) -> dg.AssetCheckResult:
        store, key = IterationStore(home.path), context.partition_key
        audit = store.read_json(store.audit_path(recipe, key))
        parent = _parent_key(key)
        parent_audit = store.read_json(store.audit_path(recipe, parent)) if parent else None
        result = g.label_quality(audit, parent_audit, g.CHANCE_4_OPTIONS, loop.guards)
        return check_result(store, recipe, key, result, loop.guards.blocking)

    @dg.asset_check(asset=task_set, name="task_makers_keep_the_format", blocking=True, partitions_def=parts,
                    additional_ins=config_in, description=CHECKS["task_makers_keep_the_format"][1])
    def task_format(context: dg.AssetCheckExecutionContext, task_set: pd.DataFrame, loop: LoopConfig,
                    home: ZeroforgeHome) -> dg.AssetCheckResult:
        well = task_set[task_set["question"] != ""] if len(task_set) else task_set
        away = sum(g.gives_answer_away(q, list(o), m) for q, o, m in zip(well["question"], well["options"], well["majority"])) \
            if len(well) else 0
        duplicates = int((task_set["reason"] == "duplicate").sum()) if len(task_set) else 0
        result = g.task_format(task_set["reason"].tolist() if len(task_set) else [], duplicates + away, len(well), loop.guards)
        return check_result(IterationStore(home.path), recipe, context.partition_key, result, loop.guards.blocking)

    @dg.asset_check(asset=benchmark_scores, name="solver_did_not_collapse", blocking=True, partitions_def=parts,
                    additional_ins=config_in, description=CHECKS["solver_did_not_collapse"][1])
    def collapse(context: dg.AssetCheckExecutionContext, benchmark_scores: dict, loop: LoopConfig,
                 home: ZeroforgeHome) -> dg.AssetCheckResult:
        store = IterationStore(home.path)
        base = store.read_json(store.base_scores_path(recipe)) if store.base_scores_path(recipe).is_file() else None
        current = benchmark_scores["procedural"]["predictions"]
        parent = benchmark_scores["parent_procedural"].get("predictions")
        result = g.answer_collapse(current, parent, base and base["procedural"].get("predictions"), loop.guards)
        png = answer_histogram({"this iteration": [p["greedy"] for p in current],
                                **({"parent": [p["greedy"] for p in parent]} if parent else {})},
                               f"{context.partition_key}: held-out greedy answers")
        write_png(store.iteration_dir(recipe, context.partition_key) / "answers.png", png)
        return check_result(store, recipe, context.partition_key, result, loop.guards.blocking,
                            {f"answer shares, {context.partition_key} (PNG)": dg.MetadataValue.md(png_markdown(png, "held-out answers"))})

    @dg.asset_check(asset=benchmark_scores, name="solver_did_not_unlearn", blocking=True, partitions_def=parts,
                    additional_ins=config_in, description=CHECKS["solver_did_not_unlearn"][1])
    def flips(context: dg.AssetCheckExecutionContext, benchmark_scores: dict, loop: LoopConfig,
              home: ZeroforgeHome) -> dg.AssetCheckResult:
        store = IterationStore(home.path)
        key, base_path = context.partition_key, store.base_scores_path(recipe)
        # from iteration 2 on, the same questions against the base too: a drift of in-noise steps adds up there
        base = (store.read_json(base_path)["procedural"].get("predictions")
                if parse_iteration(key) > 1 and base_path.is_file() else None)
        result = g.flip_rate(benchmark_scores["procedural"]["predictions"],
                             benchmark_scores["parent_procedural"]["predictions"], loop.guards,
                             benchmark_changes(store, recipe, key), base)
        return check_result(store, recipe, context.partition_key, result, loop.guards.blocking)

    return [labels, task_format, collapse, flips]


def build_base_check(base_model: dg.AssetsDefinition):
    @dg.asset_check(asset=base_model, name=BASE_CHECK[0], blocking=True, description=BASE_CHECK[1])
    def base_above_chance(context: dg.AssetCheckExecutionContext, home: ZeroforgeHome, compute: ComputeResource) -> dg.AssetCheckResult:
        store = IterationStore(home.path)
        path = store.base_model()
        card = store.read_json(path / BASE_CARD) if (path / BASE_CARD).is_file() else {}
        accuracy, blank = (card.get("held_out_accuracy") or {}).get("all"), card.get("held_out_blank_image")
        if accuracy is None or blank is None:  # a user's checkpoint (or an older card): the embedded base's questions
            model, processor = load_vlm(path, device=compute.resolved_device())
            blank = image_dependence(TransformersEngine(model, processor, batch_size=32), labeled_examples("test", 150))
            accuracy = blank.pop("real")
        result = g.base_above_chance(accuracy, blank=blank)
        blocking = [result.name] if store.base_info().get("require_above_chance", True) else []
        return check_result(store, "", None, result, blocking)

    return base_above_chance
