import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from PIL import Image

from assets.base_model import base_model
from assets.image_pool import image_pool
from assets.resources import ComputeResource, ZeroforgeHome
from models.loading import load_vlm
from orchestration.presets import FOUNDATION
from retrieval.pool import ImagePool

SMOKE = FOUNDATION["smoke"]


def _materialize(assets, home, run_config, instance=None):
    names = {a.key.to_user_string() for a in assets}
    run_config = {k: v for k, v in run_config.items() if k in names}  # a profile configures more assets than a test runs
    return dg.materialize(
        assets,
        resources={"home": ZeroforgeHome(root=str(home)), "compute": ComputeResource(device="cpu")},
        run_config={"ops": {k: {"config": v} for k, v in run_config.items()}},
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _metadata(result, key):
    [mat] = [e.materialization for e in result.get_asset_materialization_events() if e.materialization.asset_key.path == [key]]
    return {k: v.value for k, v in mat.metadata.items()}


def test_foundation_assets_materialize(tmp_path):
    # the asset path, not model quality: a 20-step warm start is enough
    cfg = {**SMOKE, "base_model": {**SMOKE["base_model"], "warm_start_steps": 20}}
    result = _materialize([base_model, image_pool], tmp_path, cfg)
    assert result.success
    md = _metadata(result, "base_model")
    assert md["source"] == "embedded" and 0.4e6 < md["parameters"] < 1.5e6
    assert md["held_out_n"] > 0 and 0.0 <= md["held_out_accuracy"] <= 1.0
    assert "| color |" in md["accuracy_by_type"] and md["warm-start loss curve (PNG)"].startswith("![")
    model_dir = Path(md["path"])
    report = json.loads((model_dir / "zeroforge_base.json").read_text())
    assert report["warm_start"]["steps"] == 20
    # the dense perception loss is on by default: its curve is on the card and its last value in the metadata
    assert report["build"]["warm_start"]["pixel_loss_weight"] == 1.0 and len(report["pixel_loss"]) == 20
    assert md["final_pixel_loss"] == report["pixel_loss"][-1]
    assert md["built_on"] == report["machine"]["cpu"] != "" and report["machine"]["torch_threads"] >= 1
    assert "all" in report["held_out_accuracy"]
    load_vlm(model_dir)  # the materialized checkpoint loads as an ordinary HF directory
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".tmp-")]

    pool_md = _metadata(result, "image_pool")
    n = SMOKE["image_pool"]["procedural_images"]
    assert pool_md["images"] == n and pool_md["added"] == n and pool_md["rejected"] == 0
    pool = ImagePool(tmp_path / "pool")
    assert pool.count() == n and len(pool.shards()) == pool_md["shards"]


def test_image_pool_quarantines_corrupt_user_files_and_is_incremental(tmp_path):
    folder = tmp_path / "user_images"
    folder.mkdir()
    for i, colour in enumerate(["red", "blue"]):
        Image.new("RGB", (40, 30), colour).save(folder / f"ok{i}.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notanimage.jpg").write_text("hello")
    cfg = {"image_pool": {"procedural_images": 10, "include_skimage": False, "folders": [str(folder)]}}
    home = tmp_path / "home"
    result = _materialize([image_pool], home, cfg)
    assert result.success
    md = _metadata(result, "image_pool")
    assert md["images"] == 12 and md["rejected"] == 2
    assert md["by_source"] == {"folder": 2, "procedural": 10}
    assert "empty.png" in md["rejections"] and "notanimage.jpg" in md["rejections"]
    quarantined = list((home / "quarantine" / "image_pool").rglob("*.reason.json"))
    assert len(quarantined) == 2

    shards_before = {p.name: p.stat().st_mtime_ns for p in (home / "pool" / "shards").iterdir()}
    Image.new("RGB", (40, 30), "green").save(folder / "ok2.png")
    again = _materialize([image_pool], home, cfg)
    md2 = _metadata(again, "image_pool")
    assert md2["images"] == 13 and md2["added"] == 1 and md2["duplicates_skipped"] == 12
    after = {p.name: p.stat().st_mtime_ns for p in (home / "pool" / "shards").iterdir()}
    assert all(after[name] == mtime for name, mtime in shards_before.items())  # nothing rewritten
    assert len(after) == len(shards_before) + 1


def test_embedder_trains_on_pool_captions_then_is_reused_or_loaded_from_a_checkpoint(tmp_path):
    from assets.embedder import embedder

    cfg = {"image_pool": {"procedural_images": 60, "include_skimage": False}, "embedder": {"steps": 12, "batch_size": 16}}
    first = _metadata(_materialize([image_pool, embedder], tmp_path, cfg), "embedder")
    assert first["trained"] is True and first["source"] == "trained on pool captions" and first["train_steps"] == 12
    assert first["held_out_captions"] == 12 and 0.0 <= first["recall@1"] <= first["recall@5"] <= first["recall@10"] <= 1.0
    assert first["embedded_rows"] == first["embedded_new"] == 60 and first["embedding"] == "re-embedded 60 images"
    pool = ImagePool(tmp_path / "pool")
    assert pool.embedder_info()["fingerprint"] == first["fingerprint"] == pool.load_embedder().fingerprint
    # same pool, same config: the trained embedder and every vector are reused
    again = _metadata(_materialize([embedder], tmp_path, {"embedder": cfg["embedder"]}), "embedder")
    assert again["trained"] is False and again["embedded_new"] == 0 and again["embedding"].startswith("reused")
    assert again["fingerprint"] == first["fingerprint"]
    # a user's open_clip checkpoint from a path: the same weights, so nothing is re-embedded either
    user = _metadata(_materialize([embedder], tmp_path, {"embedder": {"checkpoint_path": first["path"]}}), "embedder")
    assert user["source"] == "user checkpoint" and user["fingerprint"] == first["fingerprint"] and user["embedded_new"] == 0


def test_base_model_accepts_a_user_checkpoint(tmp_path, tiny_model_dir):
    result = _materialize([base_model], tmp_path, {"base_model": {"model_path": str(tiny_model_dir)}})
    assert result.success
    md = _metadata(result, "base_model")
    assert md["source"] == "user checkpoint" and md["architecture"] == "Qwen2_5_VLForConditionalGeneration"
    # a user's checkpoint is recorded (a pointer file), never copied
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["base_model.json"]


def test_base_model_with_a_bad_path_fails_with_a_clear_error(tmp_path):
    result = _materialize([base_model], tmp_path, {"base_model": {"model_path": str(tmp_path / "nope")}})
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "does not exist" in failure.step_failure_data.error.cause.message


def test_definitions_load_with_the_demo_job():
    from orchestration.definitions import defs

    job = defs.resolve_job_def("demo_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {"base_model", "image_pool", "embedder", "foundation_lineage"}
    assert Path(__file__).parents[2].joinpath("workspace.yaml").read_text().count("orchestration.definitions") == 1


def test_the_foundation_a_recipe_reads_includes_what_it_requires():
    from orchestration.runs import foundation_assets_for

    assert foundation_assets_for("vzero") == ["base_model", "image_pool", "foundation_lineage"]
    assert "embedder" in foundation_assets_for("activezero")  # its Searcher queries the pool's vectors


def test_demo_cli_records_runs_on_a_persistent_instance(tmp_path):
    """README command 1 in miniature: the CLI runs the job on $ZEROFORGE_HOME/dagster, where `make ui` looks."""
    env = {**os.environ, "ZEROFORGE_HOME": str(tmp_path)}
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.run(
        [sys.executable, "-m", "zeroforge.cli", "demo", "--profile", "smoke"],
        env=env, capture_output=True, text=True, timeout=3600,  # ~60 s idle: an outer limit only, so a busy machine is slower, never red
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "zeroforge demo (smoke) succeeded" in proc.stdout
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))
    for key in ("base_model", "image_pool", "foundation_lineage"):
        assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None
    # a V-Zero demo builds only the foundation V-Zero reads: Active-Zero's embedder is left for its own runs
    assert instance.get_latest_materialization_event(dg.AssetKey("embedder")) is None
    runs = instance.get_runs()
    assert sorted(r.job_name for r in runs) == ["demo_job", "vzero_iteration", "vzero_leaderboard"]
    assert "vzero: 1 iteration(s) on the embedded default" in proc.stdout and "iter-0001" in proc.stdout
    # every configured benchmark against the base, paired; the three procedural forms by default
    assert "iter-0001 vs base on every benchmark" in proc.stdout
    assert all(f"  {b}: " in proc.stdout for b in ("procedural", "procedural_yesno", "procedural_open"))


def test_base_model_is_reused_for_the_same_config_and_rebuilt_on_request(tmp_path):
    cfg = {"base_model": {**SMOKE["base_model"], "warm_start_steps": 2}}
    first = _metadata(_materialize([base_model], tmp_path, cfg), "base_model")
    again = _metadata(_materialize([base_model], tmp_path, cfg), "base_model")
    assert first["reused"] is False and again["reused"] is True and again["path"] == first["path"]
    forced = _metadata(_materialize([base_model], tmp_path, {"base_model": {**cfg["base_model"], "rebuild": True}}), "base_model")
    assert forced["reused"] is False and forced["path"] == first["path"]
    other = _metadata(_materialize([base_model], tmp_path, {"base_model": {**cfg["base_model"], "seed": 1}}), "base_model")
    assert other["path"] != first["path"]
    blind = _metadata(_materialize([base_model], tmp_path, {"base_model": {**cfg["base_model"], "pixel_loss_weight": 0.0}}),
                      "base_model")
    assert blind["path"] not in (first["path"], other["path"]) and "final_pixel_loss" not in blind


def test_image_pool_takes_webdataset_shards_and_benchmark_files(tmp_path):
    import base64
    import io

    import pandas as pd
    import webdataset as wds

    def png(color):
        buf = io.BytesIO()
        Image.new("RGB", (16, 12), color).save(buf, format="PNG")
        return buf.getvalue()

    shard = tmp_path / "team-000000.tar"
    with wds.TarWriter(str(shard)) as sink:
        sink.write({"__key__": "a", "png": png("red"), "txt": "a red square"})
        sink.write({"__key__": "b", "png": b"not an image", "txt": "broken"})
    tsv = tmp_path / "Mini.tsv"
    pd.DataFrame([{"index": 0, "image": base64.b64encode(png("blue")).decode(), "question": "What color?", "answer": "blue"}]
                 ).to_csv(tsv, sep="\t", index=False)
    cfg = {"image_pool": {"procedural_images": 4, "include_skimage": False, "shards": [str(shard)],
                          "benchmark_files": [f"Mini={tsv}"]}}
    result = _materialize([image_pool], tmp_path / "home", cfg)
    assert result.success
    md = _metadata(result, "image_pool")
    assert md["by_source"] == {"benchmark": 1, "procedural": 4, "shards": 1} and md["rejected"] == 1
    assert "b" in md["rejections"]
