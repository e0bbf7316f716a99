"""Load any local Hugging Face VLM directory: the embedded tiny model or a real checkpoint.

One code path for every model: `AutoModelForImageTextToText` +
`AutoProcessor`, local files only. Pointing `base_model` at a downloaded
Qwen2.5-VL-7B-Instruct or Qwen3-VL directory changes nothing else in zeroforge.

    from models.loading import load_vlm
    model, processor = load_vlm("/models/Qwen2.5-VL-3B-Instruct", device="cuda")
"""

from __future__ import annotations

import models.compat  # noqa: F401  (the torchvision fallback, before transformers imports torchvision)

# isort: split

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.utils import logging as hf_logging

# A "Loading weights" progress bar per checkpoint load: the loop loads several per step, in milliseconds each.
hf_logging.disable_progress_bar()


class ModelDirectoryError(FileNotFoundError):
    """A model path that is not a loadable Hugging Face checkpoint directory."""


def check_model_dir(path: str | Path) -> Path:
    """Return `path` if it looks like an HF VLM checkpoint, else raise a clear error."""
    p = Path(path)
    if not p.is_dir():
        raise ModelDirectoryError(f"model directory {p} does not exist (expected a Hugging Face checkpoint folder)")
    missing = [name for name in ("config.json",) if not (p / name).is_file()]
    has_weights = any(p.glob("*.safetensors")) or any(p.glob("*.bin"))
    if missing or not has_weights:
        found = sorted(x.name for x in p.iterdir())[:12]
        raise ModelDirectoryError(
            f"{p} is not a Hugging Face checkpoint: expected config.json and *.safetensors, found {found}"
        )
    return p


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> torch.dtype:
    """bf16 where the hardware supports it, float32 on CPU (bf16 matmuls are slow there)."""
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_processor(path: str | Path, padding_side: str = "left"):
    """The model's processor; left padding, since generation appends on the right."""
    processor = AutoProcessor.from_pretrained(str(check_model_dir(path)), local_files_only=True)
    processor.tokenizer.padding_side = padding_side
    return processor


def load_vlm(
    path: str | Path,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    padding_side: str = "left",
):
    """Load (model, processor) from a local directory, on `device`, in eval mode."""
    p = check_model_dir(path)
    device = device or default_device()
    dtype = dtype or default_dtype(device)
    model = AutoModelForImageTextToText.from_pretrained(str(p), dtype=dtype, local_files_only=True)
    model.to(device)
    model.eval()
    return model, load_processor(p, padding_side=padding_side)


@dataclass(frozen=True)
class ModelInfo:
    path: str
    architecture: str
    model_type: str
    parameters: int | None


def describe_model(path: str | Path) -> ModelInfo:
    """Architecture and (for zeroforge-built models) parameter count, without loading weights."""
    p = check_model_dir(path)
    cfg = json.loads((p / "config.json").read_text())
    build = p / "zeroforge_build.json"
    params = json.loads(build.read_text()).get("parameters") if build.is_file() else None
    return ModelInfo(
        path=str(p),
        architecture=(cfg.get("architectures") or ["?"])[0],
        model_type=cfg.get("model_type", "?"),
        parameters=params,
    )
