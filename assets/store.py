"""Where an iteration's artifacts live, and the guard that iteration N starts from N-1.

Dagster accepts self-dependent partitioned assets only for time windows, so
"iteration N reads iteration N-1" is not an asset edge: each step asks this
store for its parent checkpoint, which raises `MissingParentError` naming the
missing partition when N-1 is not complete. The parent's path is recorded in
the asset's metadata. Layout under $ZEROFORGE_HOME/runs/<recipe>/<partition>/:
`<role>/` checkpoints, `task_set.parquet`, `images/` (the images the recipe
generated this iteration: its curriculum, never the foundation pool),
`scores.json`, `iteration_config.json`. The IO manager (`assets.io`) reads and
writes the artifacts between assets at these paths.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from models.checkpoint import checkpoint_complete
from models.files import atomic_write_json

_KEY = re.compile(r"^iter-(\d{4,})$")
# asset name -> artifact under the iteration folder (checkpoint assets map to their role's folder)
ARTIFACTS = {"iteration_config": "iteration_config.json", "task_set": "task_set.parquet", "benchmark_scores": "scores.json"}


class MissingParentError(RuntimeError):
    """Iteration N was asked for before iteration N-1 (or the base model) exists."""


def iteration_key(n: int) -> str:
    """Partition keys sort as text: iter-0001, iter-0002, ..."""
    if n < 1:
        raise ValueError(f"iterations start at 1, got {n}")
    return f"iter-{n:04d}"


def parse_iteration(key: str) -> int:
    m = _KEY.match(key)
    if not m:
        raise ValueError(f"partition key {key!r} is not an iteration key like 'iter-0001'")
    return int(m.group(1))


class IterationStore:
    def __init__(self, home: Path):
        self.home = Path(home)

    # -- base model pointer -------------------------------------------------
    @property
    def base_pointer(self) -> Path:
        return self.home / "models" / "base_model.json"

    def set_base_model(self, path: Path, source: str, require_above_chance: bool = True) -> None:
        atomic_write_json(self.base_pointer, {"path": str(path), "source": source, "require_above_chance": require_above_chance})

    def base_info(self) -> dict:
        """The recorded base model: path, source, and whether its guard blocks (see `base_model`'s config)."""
        self.base_model()  # raises the clear error when there is none
        return json.loads(self.base_pointer.read_text())

    def base_model(self) -> Path:
        if not self.base_pointer.is_file():
            raise MissingParentError(f"no base model recorded at {self.base_pointer}: materialize `base_model` first")
        path = Path(json.loads(self.base_pointer.read_text())["path"])
        if not (path / "config.json").is_file():
            raise MissingParentError(f"the recorded base model {path} is missing: rematerialize `base_model`")
        return path

    # -- iteration layout ---------------------------------------------------
    def iteration_dir(self, recipe: str, partition: str) -> Path:
        parse_iteration(partition)
        return self.home / "runs" / recipe / partition

    def role_dir(self, recipe: str, partition: str, role: str) -> Path:
        return self.iteration_dir(recipe, partition) / role

    def task_set_path(self, recipe: str, partition: str) -> Path:
        return self.iteration_dir(recipe, partition) / "task_set.parquet"

    def generated_images_dir(self, recipe: str, partition: str) -> Path:
        """Where the images a recipe generates in this iteration live (an ImagePool of their own)."""
        return self.iteration_dir(recipe, partition) / "images"

    def artifact_path(self, recipe: str, partition: str, asset_name: str) -> Path:
        """The file or folder that holds asset `asset_name` of this iteration (`<role>_checkpoint` -> `<role>/`)."""
        if asset_name in ARTIFACTS:
            return self.iteration_dir(recipe, partition) / ARTIFACTS[asset_name]
        if asset_name.endswith("_checkpoint"):
            return self.role_dir(recipe, partition, asset_name.removesuffix("_checkpoint"))
        raise KeyError(f"no artifact layout for asset {asset_name!r}")

    def audit_path(self, recipe: str, partition: str) -> Path:
        """The pseudo-label audit of this iteration's labeler (the parent Solver), per question."""
        return self.iteration_dir(recipe, partition) / "pseudo_label_audit.json"

    def guard_path(self, recipe: str, partition: str | None, guard: str) -> Path:
        """A guard's last verdict: per iteration, or for the foundation (partition None: the base model's)."""
        if partition is None:
            return self.home / "guards" / f"{guard}.json"
        return self.iteration_dir(recipe, partition) / "guards" / f"{guard}.json"

    @staticmethod
    def read_json(path: Path) -> dict:
        return json.loads(Path(path).read_text())

    def guard_results(self, recipe: str, partition: str | None) -> dict[str, dict]:
        """{guard: its last verdict} of an iteration (or the foundation's); {} before any ran."""
        folder = self.home / "guards" if partition is None else self.iteration_dir(recipe, partition) / "guards"
        return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}

    def scores_path(self, recipe: str, partition: str) -> Path:
        return self.iteration_dir(recipe, partition) / "scores.json"

    def base_scores_path(self, recipe: str) -> Path:
        return self.home / "runs" / recipe / "base_scores.json"

    def eval_dir(self, recipe: str, partition: str) -> Path:
        """Evaluation harness output of this iteration's Solver: report.json + predictions/*.parquet."""
        return self.iteration_dir(recipe, partition) / "eval"

    def base_eval_dir(self, recipe: str) -> Path:
        return self.home / "runs" / recipe / "base_eval"

    def parent_eval_dir(self, recipe: str, partition: str) -> Path:
        n = parse_iteration(partition)
        return self.base_eval_dir(recipe) if n == 1 else self.eval_dir(recipe, iteration_key(n - 1))

    def iterations(self, recipe: str) -> list[str]:
        """Iteration keys that have a directory, in order."""
        root = self.home / "runs" / recipe
        return sorted(p.name for p in root.glob("iter-*") if p.is_dir()) if root.is_dir() else []

    def config_path(self, recipe: str, partition: str) -> Path:
        return self.iteration_dir(recipe, partition) / "iteration_config.json"

    @staticmethod
    def checkpoint_complete(path: Path) -> bool:
        """A role checkpoint is complete once its card lists every file (`models.checkpoint.checkpoint_complete`)."""
        return checkpoint_complete(path)

    def parent_checkpoint(self, recipe: str, partition: str, role: str) -> tuple[Path, str]:
        """(directory, label) of the checkpoint `role` starts from in `partition`."""
        n = parse_iteration(partition)
        if n == 1:
            return self.base_model(), "base_model"
        prev = iteration_key(n - 1)
        path = self.role_dir(recipe, prev, role)
        if not self.checkpoint_complete(path):
            raise MissingParentError(
                f"{recipe} {partition} needs the {role} checkpoint of {prev} at {path}, which is missing or incomplete: "
                f"materialize {prev} first"
            )
        return path, f"{recipe}/{prev}/{role}"

    def parent_scores(self, recipe: str, partition: str) -> Path:
        n = parse_iteration(partition)
        return self.base_scores_path(recipe) if n == 1 else self.scores_path(recipe, iteration_key(n - 1))
