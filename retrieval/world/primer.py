"""A perception primer: scenes of one to three *large* shapes, for the warm start only.

A vision tower trained from random init does not learn to find a 16-pixel object among
64 mostly-background patches from the world's scenes within a CPU warm start: on
"What color is the circle?" about 1-2 object scenes, a ~3M Qwen2.5-VL stayed at the
blank-image accuracy (chance) after 200 steps, and the full task mix left it blind after
750 steps (its held-out accuracy was the same with the image replaced by a blank one).
With half of the examples asked about primer scenes, the same model answered the world
question right 68% of the time after 200 steps (blank image: 29%); docs/efficacy.md.

Primer scenes are ordinary ``shapes`` scenes (same scene layout, same drawing code, same
task makers in ``retrieval.world.tasks``) whose objects are 2-3x the world's "large"
radius, so colour, shape, count and existence are visible in many patches at once. They
train; they are never held out or asked about by the loop (their ids start with
"primer-", and they are not in ``retrieval.world.KINDS``).

    from retrieval.world.primer import primer_images
    images = primer_images(500, seed=0)
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

from retrieval.world.core import WorldImage
from retrieval.world.palette import ALL_SHAPES, BACKGROUND, COLOR_NAMES, COLORS, number_word
from retrieval.world.shapes import describe, draw_shape
from retrieval.world.tasks import TaskMix

MAX_OBJECTS = 3


def primer_image(seed: int, size: int = 64, n_objects: int | None = None) -> WorldImage:
    """One primer scene: 1-3 large shapes (radius 14-24 px at 64 px alone, smaller when sharing the canvas)."""
    rng = random.Random(f"zeroforge-primer:{seed}")
    n = rng.choice([1, 1, 2, 3]) if n_objects is None else n_objects
    scale = size / 64
    lo, hi = {1: (14, 24), 2: (10, 15), 3: (8, 12)}[n]
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    objects: list[dict] = []
    for _ in range(n):
        for _attempt in range(200):
            r = round(rng.randint(lo, hi) * scale)
            x, y = rng.randint(r + 1, size - r - 2), rng.randint(r + 1, size - r - 2)
            if all(math.hypot(x - o["x"], y - o["y"]) >= r + o["r"] + 3 for o in objects):
                break
        else:
            break
        objects.append({"shape": rng.choice(ALL_SHAPES), "color": rng.choice(COLOR_NAMES), "size": "large",
                        "x": x, "y": y, "r": r})
    for o in objects:
        draw_shape(draw, o["shape"], o["x"], o["y"], o["r"], COLORS[o["color"]])
    ordered = sorted(objects, key=lambda o: (o["x"], o["y"]))
    phrases = [describe(o) for o in ordered]
    listing = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    caption = f"{number_word(len(objects))} shape{'s' if len(objects) != 1 else ''}: {listing}"
    scene = {"width": size, "height": size, "background": list(BACKGROUND), "objects": objects}
    return WorldImage(id=f"primer-s{seed}-{size}px", kind="shapes", seed=seed, difficulty=1, image=image,
                      caption=caption, scene=scene)


def primer_images(n: int, seed: int = 0, size: int = 64, n_objects: int | None = None) -> list[WorldImage]:
    """`n` primer scenes, deterministic in `seed` (`n_objects` fixes the number of shapes)."""
    return [primer_image(seed * 1_000_003 + i, size, n_objects) for i in range(n)]


# What the first warm-start steps ask (see `perception_curriculum`): colour and shape, open answers.
CURRICULUM_MIX = TaskMix((("color", 1.0), ("shape", 1.0)), (("open", 1.0),))


def perception_curriculum(n: int, seed: int = 0, size: int = 64) -> list[WorldImage]:
    """Images for the warm start's first phase: single large shapes and the world's easiest scenes, half each.

    Asked with `CURRICULUM_MIX` ("What color is the circle?" with no options to lean on), they
    are what made a from-scratch vision tower start to see within ~100 steps; the same budget
    on the full task mix, or on multi-object primer scenes asked in every kind, left it blind.
    """
    from retrieval.world.core import sample_world
    from retrieval.world.splits import split_seed

    single = primer_images(n - n // 2, seed=seed + 17, size=size, n_objects=1)
    easy = sample_world(n // 2, split_seed("curriculum", seed), kinds=("shapes",), difficulties=(1,), size=size)
    return single + easy
