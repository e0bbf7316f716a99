"""One MM-Zero iteration in-process on the ~1M model, with an empty image pool: zero input images.

The base is the tiny model taught the MM-Zero formats on one templated item
(Proposer text, Coder SVG, the Solver's answers to its two questions): enough
for its first proposals to parse and its first programs to render, in well
under a minute. Every step then runs for real: Proposer GRPO (its reward codes,
renders and votes), Coder GRPO (sandboxed renders, Solver votes), the task set
(renders added to the pool), the GX gate, the audit metadata, Solver GRPO.
"""

import json
import random

import pytest
import torch

from recipes import get_recipe
from recipes.loop import IterationContext, build_task_set, task_set_stats, train_solver, train_task_maker
from recipes.mmzero import RENDER_SOURCE, MMZeroOptions, parse_proposer


def test_one_iteration_from_zero_images(mmzero_base, tmp_path):
    from recipes.validation import validate_task_set
    from retrieval.pool import ImagePool

    recipe = get_recipe("mmzero")
    pool = ImagePool(tmp_path / "pool")
    assert pool.count() == 0  # zero input images
    cfg = recipe.default_config("smoke")
    ctx = IterationContext("mmzero", 1, "iter-0001", cfg, {r: mmzero_base for r in recipe.roles}, pool)

    # Proposer -> Coder -> Solver, each from its parent; the Coder trains on this iteration's Proposer
    res, summary = train_task_maker(recipe, "proposer", ctx, tmp_path / "proposer")
    assert res.steps == 1 and summary["proposer_completions"] == 2 and summary["proposer_malformed_rate"] < 1
    ctx.trained["proposer"] = res.out_dir
    res, summary = train_task_maker(recipe, "coder", ctx, tmp_path / "coder")
    assert res.steps == 1 and summary["coder_completions"] == 2 and summary["coder_render_rate"] > 0
    assert pool.count() == 0  # training renders are scored, never added

    df = build_task_set(recipe, ctx, {"proposer": tmp_path / "proposer", "coder": tmp_path / "coder"})
    stats = task_set_stats(df)
    renders = pool.records()
    assert len(renders) > 0 and set(renders["source"]) == {RENDER_SOURCE}
    rendered = df[df["image_id"] != ""]
    kinds = rendered["meta"].map(lambda m: json.loads(m)["question_kind"]).tolist()
    assert set(rendered["image_id"]) <= set(renders["id"]) and kinds == ["easy", "hard"] * (len(rendered) // 2)
    # every Proposer item is accounted for: malformed, render_failed, or two labeled questions
    items = stats["malformed"] + stats["render_failed"] + len(rendered) // 2
    assert items == cfg.images_per_iteration
    assert set(df[df["image_id"] == ""]["reason"]) <= {"malformed", "render_failed"}
    report = validate_task_set(df, (cfg.band_low, cfg.band_high), set(pool.ids()).__contains__)
    assert report.success, report.markdown()

    md = recipe.task_set_metadata(df, ctx)
    assert md["renders_ok"] == len(rendered) // 2 and md["proposer_items"] == items
    assert md["renders_contact_sheet"].startswith("![renders](data:image/png;base64,")
    assert md["curriculum_audit"].count("\n") >= 2 and "| ok |" in md["curriculum_audit"]
    assert 0 < md["render_rate"] <= 1 and MMZeroOptions.of(cfg).render_size == pool.get_image(renders["id"][0]).width

    solver = train_solver(ctx, df, tmp_path / "solver")
    assert solver.steps == 1 and (tmp_path / "solver" / "zeroforge_train.json").is_file()
