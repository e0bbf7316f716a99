"""The step context: generated images live with their iteration, never in the pool; images and engines are cached."""

import random

from recipes import get_recipe
from recipes.core.context import IterationContext, IterationImages
from retrieval.pool import ImagePool
from retrieval.sources import build_source
from retrieval.spy_pairs import make_pair, pair_records


def test_generated_images_are_stored_with_the_iteration_and_never_sampled(tmp_path, tiny_model_dir):
    pool = ImagePool(tmp_path / "pool")
    pool.add(build_source("procedural", n=6, seed=3).iter_items())
    images = IterationImages(pool, tmp_path / "iter-0001" / "images")
    ctx = IterationContext(get_recipe("vzero"), 1, "iter-0001", get_recipe("vzero").default_config("smoke"),
                           {"solver": tiny_model_dir}, images)
    foundation = sorted(pool.ids())
    pair = make_pair(images.record(foundation[0]), random.Random(0))
    images.add(pair_records(pair))  # what Vision-Zero does with a game's images
    generated = images.generated_ids()
    assert len(generated) == 2 and sorted(pool.ids()) == foundation  # the foundation pool is untouched
    assert all(images.has(i) for i in generated + foundation) and not images.has("nope")
    assert images.get(generated[0]).size == pair.spy.size  # generated images resolve like any other
    for salt in ("tasks", "questioner-train", "games"):
        assert set(ctx.sample_image_ids(100, salt)) == set(foundation)  # never another recipe's generated images

    decodes = images.decodes
    first = ctx.image(foundation[1])
    assert ctx.image(foundation[1]) is first and images.decodes == decodes + 1  # one decode per image per step
    assert ctx.engine(tiny_model_dir) is ctx.engine(tiny_model_dir)  # one engine per checkpoint per step
