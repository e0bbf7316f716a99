"""One MM-Zero iteration in-process on the ~1M model, with an empty image pool: zero input images.

The base is the tiny model taught the MM-Zero formats on one templated item
(Proposer text, Coder SVG, the Solver's answers to its two questions): enough
for its first proposals to parse and its first programs to render, in well
under a minute. Every step then runs for real: Proposer GRPO (its reward codes,
renders and votes), Coder GRPO (sandboxed renders, Solver votes), the task set
(renders stored with the iteration, never in the pool), the GX gate, the audit
metadata, Solver GRPO.
"""

import json

from recipes import get_recipe
from recipes.core.context import IterationContext, IterationImages
from recipes.core.loop import task_set_stats, train_solver, train_task_maker
from recipes.mmzero.render import RENDER_SOURCE
from retrieval.pool import ImagePool


def test_one_iteration_from_zero_images(mmzero_base, tmp_path):
    recipe = get_recipe("mmzero")
    pool = ImagePool(tmp_path / "pool")
    assert pool.count() == 0  # zero input images
    cfg = recipe.default_config("smoke")
    images = IterationImages(pool, tmp_path / "iter-0001" / "images")
    ctx = IterationContext(recipe, 1, "iter-0001", cfg, {r: mmzero_base for r in recipe.roles}, images)

    # Proposer -> Coder -> Solver, each from its parent; the Coder trains on this iteration's Proposer
    res, summary = train_task_maker(ctx, "proposer", tmp_path / "proposer")
    assert res.steps == 1 and summary["proposer_completions"] == 2 and summary["proposer_malformed_rate"] < 1
    ctx.trained["proposer"] = res.out_dir
    res, summary = train_task_maker(ctx, "coder", tmp_path / "coder")
    assert res.steps == 1 and summary["coder_completions"] == 2 and summary["coder_render_rate"] > 0
    assert pool.count() == 0 and images.generated_ids() == []  # training renders are scored, never stored

    df = recipe.build_task_set(ctx, {"proposer": tmp_path / "proposer", "coder": tmp_path / "coder"})
    stats = task_set_stats(df, recipe.reasons(cfg), recipe.keep_rule(cfg))
    assert pool.count() == 0  # renders belong to the iteration's curriculum, not to the foundation pool
    renders = images.generated.records()
    assert len(renders) > 0 and set(renders["source"]) == {RENDER_SOURCE}
    rendered = df[df["image_id"] != ""]
    kinds = rendered["meta"].map(lambda m: json.loads(m)["question_kind"]).tolist()
    assert set(rendered["image_id"]) <= set(renders["id"]) and kinds == ["easy", "hard"] * (len(rendered) // 2)
    # every Proposer item is accounted for: malformed, render_failed, or two labeled questions
    items = stats["malformed"] + stats["render_failed"] + len(rendered) // 2
    assert items == cfg.images_per_iteration
    assert set(df[df["image_id"] == ""]["reason"]) <= {"malformed", "render_failed"}
    report = recipe.validate_task_set(df, cfg, images.has)
    assert report.success, report.markdown()

    md = recipe.task_set_metadata(df, ctx)
    assert md["renders_ok"] == len(rendered) // 2 and md["proposer_items"] == items
    assert md["renders_contact_sheet"].startswith("![renders](data:image/png;base64,")
    assert md["curriculum_audit"].count("\n") >= 2 and "| ok |" in md["curriculum_audit"]
    assert 0 < md["render_rate"] <= 1 and cfg.render_size == ctx.image(renders["id"][0]).width

    solver = train_solver(ctx, df, tmp_path / "solver")
    assert solver.steps == 1 and (tmp_path / "solver" / "zeroforge_train.json").is_file()
