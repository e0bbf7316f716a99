"""What one iteration's steps work with: the recipe, its config, its parents, its images and its engines.

An `IterationContext` is built once per step from the iteration's typed
config (which Dagster hands over through the IO manager) and the store's
parent checkpoints. Images come through `IterationImages`: the foundation
pool (read-only; what every recipe samples from) plus this iteration's own
generated images (MM-Zero renders, Vision-Zero pairs), which live with the
iteration's curriculum, never in the pool, so the pool's data version keeps
describing what the pool holds and no recipe ever samples another's renders.
Decoded images and loaded engines are cached per step: each checkpoint is
loaded once and each image decoded once, however many hooks ask for it.

    ctx = IterationContext(recipe, 1, "iter-0001", cfg, parents, IterationImages(pool, generated_dir))
    ctx.image(ctx.sample_image_ids(8, "tasks")[0])
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from models.generation import InferenceEngine, TransformersEngine
from models.loading import load_vlm
from models.vllm_engine import VLLMEngine, vllm_available
from recipes.core.config import LoopConfig
from retrieval.pool import ImagePool, PoolReport
from retrieval.sources.base import ImageRecord


class IterationImages:
    """The foundation pool plus the images this iteration generated, behind one lookup (decodes cached)."""

    def __init__(self, pool: ImagePool, generated_root: Path | None = None, cache_size: int = 1024,
                 sources: tuple[str, ...] | None = None):
        self.pool = pool
        self.sources = sources  # the generated sources the recipe declared (None: not checked)
        self.generated_root = Path(generated_root) if generated_root else None
        self._generated: ImagePool | None = None
        self._cache: OrderedDict[str, Image.Image] = OrderedDict()
        self.cache_size = cache_size
        self.decodes = 0  # how many images were actually decoded (the rest came from the cache)

    @property
    def generated(self) -> ImagePool | None:
        """This iteration's own image store; opened on first use (None when the iteration has none)."""
        if self._generated is None and self.generated_root is not None and (self.generated_root / "lancedb").is_dir():
            self._generated = ImagePool(self.generated_root)
        return self._generated

    def add(self, records: Iterable[ImageRecord]) -> PoolReport:
        """Store generated images with this iteration (idempotent: known ids are skipped)."""
        if self.generated_root is None:
            raise ValueError("this context has no store for generated images (generated_root is None)")
        records = list(records)
        undeclared = sorted({r.source for r in records} - set(self.sources or ())) if self.sources is not None else []
        if undeclared:
            raise ValueError(f"generated images of source(s) {undeclared} that the recipe did not declare "
                             f"(generated_sources = {self.sources})")
        if self._generated is None:
            self._generated = ImagePool(self.generated_root)
        return self._generated.add(records)

    def _owner(self, image_id: str) -> ImagePool:
        gen = self.generated
        return gen if gen is not None and gen.has(image_id) else self.pool

    def get(self, image_id: str) -> Image.Image:
        if image_id in self._cache:
            self._cache.move_to_end(image_id)
            return self._cache[image_id]
        img = self._owner(image_id).get_image(image_id)
        self.decodes += 1
        self._cache[image_id] = img
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return img

    def record(self, image_id: str) -> ImageRecord:
        return self._owner(image_id).get_record(image_id)

    def has(self, image_id: str) -> bool:
        gen = self.generated
        return self.pool.has(image_id) or (gen is not None and gen.has(image_id))

    def ids(self) -> set[str]:
        gen = self.generated
        return set(self.pool.ids()) | (set(gen.ids()) if gen is not None else set())

    def generated_ids(self) -> list[str]:
        gen = self.generated
        return gen.ids() if gen is not None else []


def default_engine_factory(device: str, batch_size: int) -> Callable[[Path], InferenceEngine]:
    """vLLM on CUDA when it is installed (prefix caching shares each prompt's prefill), else batched transformers."""

    def make(model_dir: Path) -> InferenceEngine:
        if device.startswith("cuda") and vllm_available():
            return VLLMEngine(str(model_dir))
        model, processor = load_vlm(model_dir, device=device)
        return TransformersEngine(model, processor, batch_size=batch_size)

    return make


@dataclass
class IterationContext:
    """What one iteration's steps need: the recipe, its config, where its parents are, its images, its engines."""

    recipe: object  # recipes.core.recipe.Recipe (typed loosely: recipe modules import this one)
    iteration: int
    partition: str
    config: LoopConfig
    parents: dict[str, Path]  # role -> checkpoint this iteration starts from
    images: IterationImages
    device: str = "cpu"
    engine_factory: Callable[[Path], InferenceEngine] | None = None
    # this iteration's complete task-maker checkpoints so far (a later role may use an earlier one's output)
    trained: dict[str, Path] = field(default_factory=dict)
    _engines: dict[Path, InferenceEngine] = field(default_factory=dict, repr=False)

    @property
    def pool(self) -> ImagePool:
        """The foundation pool (search, sampling); use `image()` to read any image of the iteration."""
        return self.images.pool

    def engine(self, model_dir: Path) -> InferenceEngine:
        """One engine per checkpoint per step, loaded on first use."""
        key = Path(model_dir).resolve()
        if key not in self._engines:
            make = self.engine_factory or default_engine_factory(self.device, self.config.engine_batch_size)
            self._engines[key] = make(key)
        return self._engines[key]

    def image(self, image_id: str) -> Image.Image:
        return self.images.get(image_id)

    def rng(self, salt: str) -> random.Random:
        return random.Random(f"{self.recipe.name}:{self.iteration}:{salt}:{self.config.seed}")

    def sample_image_ids(self, n: int, salt: str) -> list[str]:
        """n foundation-pool images to ask about (generated images never are: they live with their iteration)."""
        ids = sorted(self.pool.ids())
        if not ids:
            raise ValueError("the image pool is empty: materialize image_pool first")
        return self.rng(salt).sample(ids, min(n, len(ids)))
