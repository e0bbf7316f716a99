"""The embedded default model: a tiny Qwen2.5-VL built locally, offline, from random init.

zeroforge's default run has no downloadable weights, so it builds a
Qwen2.5-VL-architecture model small enough to train on two CPU cores, with a
tokenizer trained on the world's text (`models.tokenizer`) and a real
`Qwen2_5_VLProcessor`. The result is an ordinary Hugging Face checkpoint
directory: `AutoModelForImageTextToText.from_pretrained(dir)` and
`AutoProcessor.from_pretrained(dir)` load it with `HF_HUB_OFFLINE=1`, and every
other part of zeroforge treats it exactly like Qwen2.5-VL-7B.

    from models.tiny_vlm import build_tiny_vlm, TINY_SPECS
    build_tiny_vlm(out_dir, corpus_lines, TINY_SPECS["tiny"])

Sizes: `tiny` (~1M parameters) for tests, `small` (a few million) for the demo.
Deviations from the real model, and why: patch 8 instead of 14 (a 64x64 image
would otherwise become 4 visual tokens), full attention in every vision block
(windows of 112 px are larger than the images), and a 1-2k token vocabulary.
"""

from __future__ import annotations

import models.compat  # noqa: F401  (the torchvision fallback, before transformers imports torchvision)

# isort: split

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessorPil,
    Qwen2VLVideoProcessor,
)

from models.tokenizer import QWEN_CHAT_TEMPLATE, train_tokenizer


@dataclass(frozen=True)
class TinyVLMSpec:
    """Architecture of an embedded model. Field names follow the HF config."""

    name: str
    vocab_size: int = 1024
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 256
    vision_hidden: int = 64
    vision_depth: int = 2
    vision_heads: int = 2
    vision_intermediate: int = 128
    patch_size: int = 8
    merge_size: int = 2
    image_side: int = 64  # images are resized to at most this many pixels in area (side^2)
    max_positions: int = 2048
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.text_hidden // self.text_heads

    @property
    def mrope_section(self) -> list[int]:
        """Split head_dim/2 rotary frequencies over (time, height, width) like Qwen's [16, 24, 24]."""
        half = self.head_dim // 2
        t = half // 4
        h = (half - t) // 2
        return [t, h, half - t - h]


TINY_SPECS: dict[str, TinyVLMSpec] = {
    # ~0.8M parameters: unit tests, one GRPO step in a fraction of a second.
    "tiny": TinyVLMSpec(name="tiny"),
    # a few million parameters: the demo's base model.
    "small": TinyVLMSpec(
        name="small",
        vocab_size=1536,
        text_hidden=192,
        text_layers=4,
        text_heads=6,
        text_kv_heads=2,
        text_intermediate=512,
        vision_hidden=128,
        vision_depth=4,
        vision_heads=4,
        vision_intermediate=256,
    ),
}


def make_config(spec: TinyVLMSpec, tokenizer) -> Qwen2_5_VLConfig:
    ids = tokenizer.convert_tokens_to_ids
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=spec.text_hidden,
        intermediate_size=spec.text_intermediate,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        num_key_value_heads=spec.text_kv_heads,
        max_position_embeddings=spec.max_positions,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": spec.mrope_section},
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<|endoftext|>"),
        tie_word_embeddings=False,
    )
    vision = dict(
        depth=spec.vision_depth,
        hidden_size=spec.vision_hidden,
        intermediate_size=spec.vision_intermediate,
        num_heads=spec.vision_heads,
        patch_size=spec.patch_size,
        spatial_merge_size=spec.merge_size,
        temporal_patch_size=2,
        out_hidden_size=spec.text_hidden,
        window_size=spec.patch_size * spec.merge_size * 64,
        fullatt_block_indexes=list(range(spec.vision_depth)),
    )
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )


def make_processor(spec: TinyVLMSpec, tokenizer) -> Qwen2_5_VLProcessor:
    """A Qwen2.5-VL processor whose patch geometry matches the vision config.

    The PIL backend keeps image preprocessing off torchvision's compiled ops.
    min_pixels sits below the image area so a 64x64 image is not upscaled.
    """
    factor = spec.patch_size * spec.merge_size
    size = {"shortest_edge": factor * factor, "longest_edge": spec.image_side * spec.image_side}
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=2, size=size
    )
    video_processor = Qwen2VLVideoProcessor(
        patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=2, size=size
    )
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN_CHAT_TEMPLATE,
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_tiny_vlm(out_dir: str | Path, corpus: list[str], spec: TinyVLMSpec) -> dict:
    """Train the tokenizer, build a random-init model and save model + processor to `out_dir`.

    Returns a summary dict (spec, parameter count, vocabulary size), also
    written to `out_dir/zeroforge_build.json`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(spec.seed)
    tokenizer = train_tokenizer(corpus, vocab_size=spec.vocab_size)
    config = make_config(spec, tokenizer)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    processor = make_processor(spec, tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    summary = {
        "spec": asdict(spec),
        "parameters": count_parameters(model),
        "vocab_size": len(tokenizer),
        "architecture": "Qwen2_5_VLForConditionalGeneration",
    }
    (out / "zeroforge_build.json").write_text(json.dumps(summary, indent=2))
    return summary
