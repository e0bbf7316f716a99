"""The IO manager of the loop: what one iteration's assets hand each other, stored by asset and partition.

Modelled on the parquet IO manager of Dagster's project_fully_featured
example: every loop asset returns its value and this manager writes it under
`$ZEROFORGE_HOME/runs/<recipe>/<partition>/` (`assets.store` owns the layout),
and the next asset receives it as a typed input, so no step rebuilds another
step's output by hand:

- `iteration_config` -> `iteration_config.json`: the recipe's typed config
  (and how it was resolved); loaded back as the recipe's `LoopConfig` subclass;
- `task_set` -> `task_set.parquet` (a DataFrame, written atomically);
- `<role>_checkpoint` -> the role's folder: training publishes the checkpoint
  atomically itself (a folder of weights is not a value to pickle), so the
  output is its path, checked complete here, and the input is that path;
- `benchmark_scores` -> `scores.json` (a dict).
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.resources import ZeroforgeHome
from assets.store import IterationStore, MissingParentError
from models.checkpoint import checkpoint_complete
from models.files import atomic_write_bytes, atomic_write_json
from recipes import get_recipe
from recipes.core.config import LoopConfig


class FrozenConfig:
    """An iteration's resolved config and its provenance (what it was based on, which overrides were applied)."""

    def __init__(self, config: LoopConfig, provenance: dict):
        self.config, self.provenance = config, provenance

    def to_json(self) -> dict:
        return {"config": self.config.to_dict(), "provenance": self.provenance}

    @classmethod
    def load(cls, recipe_name: str, path: Path) -> FrozenConfig:
        data = json.loads(Path(path).read_text())
        return cls(get_recipe(recipe_name).config_from_dict(data["config"]), data.get("provenance", {}))


class IterationIOManager(dg.ConfigurableIOManager):
    """Loop artifacts by asset key ([recipe, name]) and partition, at the paths `IterationStore` defines."""

    home: ZeroforgeHome

    def _where(self, key: dg.AssetKey, partition: str) -> tuple[str, str, Path]:
        recipe, name = key.path[0], key.path[-1]
        return recipe, name, IterationStore(self.home.path).artifact_path(recipe, partition, name)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        _, name, path = self._where(context.asset_key, context.partition_key)
        if isinstance(obj, FrozenConfig):
            atomic_write_json(path, obj.to_json())
        elif isinstance(obj, pd.DataFrame):
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, obj.to_parquet(index=False))
        elif isinstance(obj, Path):
            if Path(obj).resolve() != path.resolve() or not checkpoint_complete(path):
                raise RuntimeError(f"{name} of {context.partition_key} should be a complete checkpoint at {path}, got {obj}")
        elif isinstance(obj, dict):
            atomic_write_json(path, obj)
        else:
            raise TypeError(f"{name}: the loop IO manager stores configs, DataFrames, checkpoint paths and dicts, "
                            f"not {type(obj).__name__}")

    def load_input(self, context: dg.InputContext):
        recipe, name, path = self._where(context.asset_key, context.asset_partition_key)
        if name.endswith("_checkpoint"):
            if not checkpoint_complete(path):
                raise MissingParentError(f"{recipe}/{name} of {context.asset_partition_key} at {path} is missing or "
                                         "incomplete: materialize it first")
            return path
        if not path.is_file():
            raise MissingParentError(f"{recipe}/{name} of {context.asset_partition_key} has no stored value at {path}: "
                                     "materialize it first")
        if name == "iteration_config":
            return FrozenConfig.load(recipe, path).config
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return json.loads(path.read_text())
