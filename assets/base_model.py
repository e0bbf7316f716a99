"""`base_model`: the checkpoint every role of every iteration starts from.

Either the embedded default (a tiny Qwen2.5-VL built and warm-started
locally, see `recipes.core.bootstrap.build_base_model`) or a user's local Hugging
Face VLM directory (`model_path`), which is validated and recorded, never
copied. Materialize from the UI's launchpad or `zeroforge demo`.
"""


import json
from pathlib import Path

import dagster as dg

from assets.lineage import artifact, record_lineage
from assets.resources import ZeroforgeHome
from assets.store import IterationStore
from evaluation.plots import accuracy_bars, loss_curve, png_markdown
from models.files import atomic_dir
from models.loading import describe_model
from models.warmstart import WarmStartConfig
from recipes.core.bootstrap import BASE_CARD, BaseModelBuild, build_base_model
from recipes.core.registry import recipe_names


class BaseModelConfig(dg.Config):
    """Launchpad knobs. Leave `model_path` empty for the embedded model."""

    model_path: str = ""
    size: str = "small"
    n_train_images: int = 800
    n_eval_images: int = 150
    warm_start_steps: int = 400
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 0
    # recipes whose task-maker formats the warm start teaches (empty: every registered recipe). Each format
    # shares the same warm-start budget, so a base for one recipe learns it better than a base for all.
    recipes: list[str] = []
    rebuild: bool = False  # build again even if a base with this exact config exists
    # the base_model_is_above_chance guard blocks the chain when it fails; the smoke profile's barely
    # warm-started model is at chance by design (it checks the plumbing), so it only warns there
    require_above_chance: bool = True

    def build(self) -> BaseModelBuild:
        return BaseModelBuild(
            recipes=tuple(self.recipes) if self.recipes else recipe_names(),
            size=self.size,
            n_train_images=self.n_train_images,
            n_eval_images=self.n_eval_images,
            seed=self.seed,
            warm_start=WarmStartConfig(
                steps=self.warm_start_steps,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                seed=self.seed,
            ),
        )


@dg.asset(group_name="foundation", kinds={"pytorch", "huggingface"})
def base_model(context: dg.AssetExecutionContext, config: BaseModelConfig, home: ZeroforgeHome) -> dg.MaterializeResult:
    """The warm-started base VLM (or a user's checkpoint), as a Hugging Face directory."""
    if config.model_path:
        info = describe_model(config.model_path)  # raises a clear error if it is not a checkpoint
        IterationStore(home.path).set_base_model(Path(info.path), "user checkpoint", config.require_above_chance)
        rec = record_lineage(home.path, "base_model", None, artifact("dir", Path(info.path)),
                             config={"model_path": info.path}, run_id=context.run_id, log=context.log)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(info.path),
                "architecture": info.architecture,
                "model_type": info.model_type,
                "source": "user checkpoint",
                "content_hash": rec["output"]["hash"],
            },
            data_version=dg.DataVersion(rec["output"]["hash"]),
        )
    build = config.build()
    # Content-addressed: a base built with this exact configuration is reused, so rerunning the
    # demo (or a failed downstream partition) does not repeat minutes of warm start.
    final = home.base_model_dir(build.fingerprint())
    cached = (final / BASE_CARD).is_file() and not config.rebuild
    if cached:
        report = json.loads((final / BASE_CARD).read_text())
        context.log.info(f"reusing the base model built with this configuration at {final} (set rebuild=True to build again)")
    else:
        with atomic_dir(final) as tmp:
            report = build_base_model(tmp, build, progress=True)
            (tmp / "loss.png").write_bytes(loss_curve(report["loss"], "warm-start loss"))
            (tmp / "accuracy.png").write_bytes(accuracy_bars(report["held_out_accuracy"]))
    loss_png, acc_png = (final / "loss.png").read_bytes(), (final / "accuracy.png").read_bytes()
    IterationStore(home.path).set_base_model(final, "embedded", config.require_above_chance)
    acc = report["held_out_accuracy"]
    table = "| task type | accuracy | 95% CI | n |\n|---|---|---|---|\n" + "\n".join(
        f"| {k} | {v['accuracy']:.3f} | {v['ci95'][0]:.3f}-{v['ci95'][1]:.3f} | {v['n']} |" for k, v in acc.items()
    )
    context.log.info(f"base model: {report['parameters']:,} parameters, held-out accuracy {acc['all']}")
    rec = record_lineage(home.path, "base_model", None, artifact("dir", final), config=report["build"],
                         run_id=context.run_id, log=context.log)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(rec["output"]["hash"]),
        metadata={
            "content_hash": rec["output"]["hash"],
            "path": dg.MetadataValue.path(str(final)),
            "source": "embedded",
            "reused": cached,
            "size": config.size,
            "parameters": report["parameters"],
            "held_out_accuracy": acc["all"]["accuracy"],
            "held_out_n": acc["all"]["n"],
            "questioner_format_rate": report["questioner_format_rate"],
            "warm_start_steps": report["warm_start"]["steps"],
            "final_loss": report["loss"][-1],
            "wall_time_s": round(report["seconds"], 1),
            "accuracy_by_type": dg.MetadataValue.md(table),
            "held-out accuracy by task type (PNG)": dg.MetadataValue.md(png_markdown(acc_png, "held-out accuracy")),
            "warm-start loss curve (PNG)": dg.MetadataValue.md(png_markdown(loss_png, "warm-start loss")),
            "build_config": dg.MetadataValue.json(json.loads(json.dumps(report["build"]))),
        }
    )
