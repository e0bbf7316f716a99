"""A dense perception loss for the warm start: every visual token redraws its own patch of the image.

The supervised warm start teaches a from-scratch vision tower only through the answer tokens: one
or two labels per image, back-propagated through the whole text model. On two CPU cores that signal
is too thin for the tower to learn to find and describe a 16-pixel object among mostly background,
so the base answered from the questions' priors (docs/efficacy.md). This module adds a second,
dense signal that needs no labels: a linear head on each merged visual token (what the text model
reads) predicts the quantised colour of every pixel of the image cell that token covers, at half
resolution. A token can only do that if it encodes what is in its cell, where, and in which colour,
which is what the world's questions ask about.

Colours are quantised per channel into three levels (27 classes), so the targets come from the
pixels alone: no palette, no scene graph, any image. On the world's images every named colour,
the background, the ink and the greys land in distinct classes. The head lives only during the
warm start; the saved checkpoint is an ordinary Qwen2.5-VL.

    head = PixelHead(hidden=192, cell_pixels=8)
    with capture_visual_tokens(model) as seen:
        loss = per_example_loss(model, batch)          # the vision tower runs once, as always
    targets = pixel_targets(images, batch["image_grid_thw"], patch_size=8, merge_size=2)
    loss = loss + weight * head.loss(seen.tokens, targets)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

LEVELS = 3  # per-channel quantisation levels; 3**3 = 27 colour classes
N_CLASSES = LEVELS**3
# Background pixels (every channel in the top level: the world's near-white canvas and light
# greys) outnumber everything else by ~10 to 1; they weigh this much against an object's pixels.
LIGHT_WEIGHT = 0.25
LIGHT_CLASS = N_CLASSES - 1


def colour_classes(pixels: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) class ids in [0, 27): each channel cut at 85 and 170."""
    q = np.minimum(pixels.astype(np.int32) * LEVELS // 256, LEVELS - 1)
    return q[..., 0] * LEVELS * LEVELS + q[..., 1] * LEVELS + q[..., 2]


def pixel_targets(images: Sequence[Image.Image], grid_thw: torch.Tensor, patch_size: int, merge_size: int,
                  cell_pixels: int) -> torch.Tensor:
    """Per merged visual token, the colour classes of its image cell at `cell_pixels` x `cell_pixels`.

    Returns (tokens, cell_pixels**2) long, in the order the vision tower emits merged tokens: image
    by image, row-major over the merged grid (the Qwen2-VL processor's patch layout). Each image is
    resized to the grid the processor chose (a no-op for the world's 64 x 64 images) and sampled at
    the centre of each of the cell's sub-squares.
    """
    rows = []
    cell = patch_size * merge_size
    if cell % cell_pixels:
        raise ValueError(f"cell_pixels={cell_pixels} must divide the merged cell of {cell} pixels")
    stride = cell // cell_pixels
    for img, (t, gh, gw) in zip(images, grid_thw.tolist(), strict=True):
        h, w = gh * patch_size, gw * patch_size
        im = img.convert("RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.BICUBIC)
        classes = colour_classes(np.asarray(im))[stride // 2 :: stride, stride // 2 :: stride]  # (h/stride, w/stride)
        mh, mw = gh // merge_size, gw // merge_size
        per_cell = classes.reshape(mh, cell_pixels, mw, cell_pixels).transpose(0, 2, 1, 3).reshape(mh * mw, -1)
        rows.extend([per_cell] * t)  # a still image has one temporal slice
    return torch.from_numpy(np.concatenate(rows)).long()


class PixelHead(torch.nn.Module):
    """Linear decoder from a merged visual token to its cell's colour classes."""

    def __init__(self, hidden: int, cell_pixels: int) -> None:
        super().__init__()
        self.cell_pixels = cell_pixels
        self.proj = torch.nn.Linear(hidden, cell_pixels * cell_pixels * N_CLASSES)

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Weighted cross-entropy over every pixel of every token (background down-weighted)."""
        if tokens.shape[0] != targets.shape[0]:
            raise ValueError(f"{tokens.shape[0]} visual tokens but targets for {targets.shape[0]}")
        logits = self.proj(tokens.float()).view(-1, N_CLASSES)
        flat = targets.reshape(-1).to(logits.device)
        per_pixel = torch.nn.functional.cross_entropy(logits, flat, reduction="none")
        weight = torch.where(flat == LIGHT_CLASS, LIGHT_WEIGHT, 1.0)
        return (per_pixel * weight).sum() / weight.sum()


@dataclass
class CapturedTokens:
    tokens: torch.Tensor | None = None


@contextlib.contextmanager
def capture_visual_tokens(model) -> Iterator[CapturedTokens]:
    """Record the merged visual tokens of the next vision-tower call (the model's own, no second pass)."""
    seen = CapturedTokens()

    def hook(_module, _inputs, output) -> None:
        seen.tokens = output.pooler_output if hasattr(output, "pooler_output") else output

    handle = model.model.visual.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()
