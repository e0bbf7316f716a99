"""`base_model`: the checkpoint every role of every iteration starts from.

Either the embedded default (a tiny Qwen2.5-VL built and warm-started
locally, see `recipes.core.bootstrap.build_base_model`) or a user's local Hugging
Face VLM directory (`model_path`), which is validated and recorded, never
copied. Materialize from the UI's launchpad or `zeroforge demo`.
"""


import json
from pathlib import Path

import dagster as dg
from pydantic import Field

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

    model_path: str = Field("", description="A local Hugging Face VLM directory (Qwen2.5-VL, Qwen3-VL) to start every role "
                                          "from; empty builds and warm-starts the embedded tiny model.")
    size: str = Field("small", description="Embedded model: a key of models.tiny_vlm.TINY_SPECS (tiny, small).")
    n_train_images: int = Field(800, description="Embedded model: world images (train split) whose labeled tasks the warm start trains on.")
    n_eval_images: int = Field(150, description="Held-out (test split) images the base is scored on.")
    warm_start_steps: int = Field(400, description="Optimizer steps of the warm start: its whole budget (never wall time, so "
                                                   "the same config gives the same weights on any machine).")
    batch_size: int = Field(32, description="Warm-start examples per optimizer step.")
    learning_rate: float = Field(2e-3, description="Warm-start peak learning rate (cosine decay after a short warm-up).")
    vision_lr_mult: float = Field(1.0, description="Learning-rate multiplier of the vision tower and its merger.")
    pixel_loss_weight: float = Field(1.0, description="Weight of the dense perception loss: every visual token also redraws "
                                                      "its image cell's quantised colours (models.perception), so the vision "
                                                      "tower learns from every pixel, not only through the answer; 0 turns it off.")
    pixel_cell: int = Field(8, description="Points per side at which each visual token redraws its cell (perception loss).")
    task_mix: str = Field("", description="The Solver's task types and answer kinds in the warm start: a "
                                          "retrieval.world.tasks.MIXES name; empty: every 4-option type.")
    curriculum_images: int = Field(0, description="Perception-curriculum images (single large shapes, the easiest scenes; "
                                                  "colour and shape asked openly), kept in the mix after the first phase.")
    curriculum_steps: int = Field(0, description="The warm start's first steps, trained on the perception curriculum alone.")
    seed: int = Field(0, description="Seed of the world draw, the initialisation and the warm start.")
    recipes: list[str] = Field([], description="Recipes whose task-maker formats the warm start teaches (empty: every "
                                               "registered recipe). They share one budget, so a base for one recipe learns it better.")
    rebuild: bool = Field(False, description="Build again even if a base with this exact config exists.")
    require_above_chance: bool = Field(True, description="The base_model_is_above_chance guard blocks the chain when it "
                                                         "fails; the smoke profile's seconds-long base only warns.")

    def build(self) -> BaseModelBuild:
        return BaseModelBuild(
            recipes=tuple(self.recipes) if self.recipes else recipe_names(),
            size=self.size,
            n_train_images=self.n_train_images,
            n_eval_images=self.n_eval_images,
            task_mix=self.task_mix or None,
            curriculum_images=self.curriculum_images,
            seed=self.seed,
            warm_start=WarmStartConfig(
                steps=self.warm_start_steps,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                curriculum_steps=self.curriculum_steps,
                vision_lr_mult=self.vision_lr_mult,
                pixel_loss_weight=self.pixel_loss_weight,
                pixel_cell=self.pixel_cell,
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
            # the same questions with blank images: a base above chance by answer priors alone is blind
            "held_out_blank_image_accuracy": (report.get("held_out_blank_image") or {}).get("accuracy", float("nan")),
            "held_out_by_answer_kind": dg.MetadataValue.json(report.get("held_out_by_kind", {})),
            "warm_start_cpu_seconds_per_step": round(report["warm_start"].get("cpu_seconds_per_step", 0.0), 3),
            "questioner_format_rate": report["questioner_format_rate"],
            "warm_start_steps": report["warm_start"]["steps"],
            "final_loss": report["loss"][-1],
            **({"final_pixel_loss": report["pixel_loss"][-1]} if report.get("pixel_loss") else {}),
            "wall_time_s": round(report["seconds"], 1),
            "built_on": (report.get("machine") or {}).get("cpu", "unknown"),
            "accuracy_by_type": dg.MetadataValue.md(table),
            "held-out accuracy by task type (PNG)": dg.MetadataValue.md(png_markdown(acc_png, "held-out accuracy")),
            "warm-start loss curve (PNG)": dg.MetadataValue.md(png_markdown(loss_png, "warm-start loss")),
            "build_config": dg.MetadataValue.json(json.loads(json.dumps(report["build"]))),
        }
    )
