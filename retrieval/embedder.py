"""Text-image embedders for pool retrieval: train a tiny open_clip model, or load a user's.

The Active-Zero Searcher writes a text query; ``retrieval.pool.ImagePool.search_text``
embeds it with an ``Embedder`` and looks it up among the pool's image embeddings
(``retrieval.vector_index``).  No pretrained CLIP weights can be downloaded here, so
``train_embedder`` trains a small open_clip model from scratch with the standard CLIP
contrastive loss on the pool's own (image, caption) pairs and reports text->image
recall@1/5/10 on held-out pairs.  The real deployment case is ``load_embedder`` on a
pretrained checkpoint (ViT-B-32, SigLIP, ...) given as a local path::

    report = train_embedder(pairs, "data/embedder", EmbedderConfig(epochs=20), held_out=val)
    emb = load_embedder("data/embedder")                      # a directory train_embedder wrote
    emb = load_embedder("ckpt/vit_b32.pt", model_name="ViT-B-32")   # a user's checkpoint file
    img_vecs = emb.embed_images(images)                       # (n, dim) float32, L2-normalised
    txt_vecs = emb.embed_texts(["a red circle"])
    emb.fingerprint                                           # changes iff weights/config change

A trained embedder is saved in open_clip's own ``local-dir`` layout
(``open_clip_config.json`` + ``open_clip_model.safetensors``), so plain
``open_clip.create_model_and_transforms("local-dir:DIR")`` loads it too; ``embedder.json``
next to them keeps the training config and report.  ``fingerprint`` hashes the model
config and every weight tensor; the pool keeps one vector table per fingerprint, so
images are re-embedded only when the embedder (or the pool) changes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

import models.compat  # noqa: F401  (open_clip imports torchvision, whose compiled ops fail next to the CPU torch)

# isort: split
import open_clip  # noqa: E402
import torch  # noqa: E402
from open_clip.loss import ClipLoss  # noqa: E402
from open_clip.transform import PreprocessCfg, image_transform_v2  # noqa: E402

OPEN_CLIP_CONFIG = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
EMBEDDER_META = "embedder.json"
FORMAT_VERSION = 1

# The default architecture: ~7M parameters, most of them the 49,408-token embedding table
# of open_clip's SimpleTokenizer (its BPE vocabulary ships inside the open_clip package,
# so tokenizing works offline).  Patch 8 on 64x64 images gives 64 visual tokens: small
# enough for CPU training, fine enough to see the world's small shapes and grid cells.
TINY_MODEL_CFG: dict = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "patch_size": 8, "width": 128, "layers": 4,
                   "head_width": 32, "mlp_ratio": 2.0},
    "text_cfg": {"context_length": 48, "vocab_size": 49408, "width": 128, "heads": 4,
                 "layers": 3, "mlp_ratio": 2.0},
}
TINY = "tiny"
# Half the width and depth of TINY: what the `embedder` asset trains by default, in well under a minute on
# CPU for a few-thousand-image pool (the same shape the embedder tests train).
SMALL_MODEL_CFG: dict = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32, "mlp_ratio": 2.0},
    "text_cfg": {"context_length": 48, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2, "mlp_ratio": 2.0},
}
SMALL = "small"


@dataclass
class EmbedderConfig:
    """How ``train_embedder`` builds and trains a model.

    ``model``: ``"tiny"`` (``TINY_MODEL_CFG``), the name of a built-in open_clip config
    (e.g. ``"ViT-B-32"``, trained from scratch: slow on CPU), or a custom open_clip model
    config dict (``embed_dim``, ``vision_cfg``, ``text_cfg``).  ``embed_dim``,
    ``image_size`` and ``context_length`` override the config's values when set; None
    keeps them (tiny: 128-d embeddings, 64 px images, 48 tokens).
    Training runs ``steps`` optimizer steps if given, else ``epochs`` passes over the
    pairs: capped by steps, never by wall time, so the same config gives the same model
    on a busy machine.
    """

    model: str | dict = TINY
    embed_dim: int | None = None
    image_size: int | None = None
    context_length: int | None = None
    epochs: int = 10
    steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 10
    temperature_init: float = 0.07
    seed: int = 0
    # torch intra-op threads while training (None: leave torch's setting).  On a small,
    # shared CPU 1 is often fastest: 20 steps of a small model took 1.7 s with 1 thread
    # and 30 s with 2 on 2 busy cores, where OpenMP threads spin-wait for each other.
    num_threads: int | None = None

    def model_cfg(self) -> dict:
        """The open_clip model config this training config resolves to."""
        if isinstance(self.model, dict):
            cfg = copy.deepcopy(self.model)
        elif self.model == TINY:
            cfg = copy.deepcopy(TINY_MODEL_CFG)
        elif self.model == SMALL:
            cfg = copy.deepcopy(SMALL_MODEL_CFG)
        else:
            cfg = open_clip.get_model_config(self.model)
            if cfg is None:
                raise ValueError(f"unknown open_clip model config {self.model!r}; use 'tiny', a custom "
                                 f"config dict, or one of open_clip.list_models()")
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in cfg]
        if missing:
            raise ValueError(f"open_clip model config lacks {missing}: {cfg}")
        if self.embed_dim is not None:
            cfg["embed_dim"] = int(self.embed_dim)
        if self.image_size is not None:
            cfg["vision_cfg"]["image_size"] = int(self.image_size)
        if self.context_length is not None:
            cfg["text_cfg"]["context_length"] = int(self.context_length)
        # CLIP's initial temperature; it is learned from there (and clamped at 1/100).
        cfg["init_logit_scale"] = math.log(1.0 / self.temperature_init)
        return cfg


@dataclass
class EmbedderReport:
    """Outcome of ``train_embedder``.

    ``recall`` maps k -> text->image recall@k on the held-out pairs (query = caption i,
    hit = image i among the top k of all held-out images).  World captions repeat
    (simple grids), and identical captions cannot be told apart from text, so
    ``recall_by_caption`` also counts a retrieved image whose caption equals the query.
    ``loss_curve`` has one training-loss value per step.
    """

    dir: Path
    steps: int
    seconds: float
    recall: dict[int, float]
    recall_by_caption: dict[int, float]
    loss_curve: list[float]
    n_train: int
    n_held_out: int
    fingerprint: str
    chance: dict[int, float] = field(default_factory=dict)


class Embedder:
    """An open_clip model plus its image preprocessing and tokenizer, in eval mode.

    ``embed_images`` / ``embed_texts`` return float32 arrays of shape (n, dim), each row
    L2-normalised, so inner product = cosine similarity.
    """

    def __init__(self, model: torch.nn.Module, preprocess: Callable, tokenizer: Callable,
                 model_cfg: dict, source: str, device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.model_cfg = model_cfg
        self.source = source
        self.device = torch.device(device)
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        return f"Embedder(source={self.source!r}, dim={self.dim}, fingerprint={self.fingerprint[:12]})"

    @property
    def dim(self) -> int:
        return int(self.model_cfg["embed_dim"])

    @property
    def fingerprint(self) -> str:
        """sha256 of the model config and every weight tensor (cached; call ``refresh`` after edits)."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model, self.model_cfg)
        return self._fingerprint

    def refresh(self) -> None:
        """Forget the cached fingerprint (after changing weights in place)."""
        self._fingerprint = None

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        out = [np.zeros((0, self.dim), np.float32)]
        for i in range(0, len(images), batch_size):
            batch = torch.stack([self.preprocess(_rgb(im)) for im in images[i:i + batch_size]])
            feats = self.model.encode_image(batch.to(self.device), normalize=True)
            out.append(feats.float().cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed_texts expects a list of strings, got one str; wrap it in a list")
        out = [np.zeros((0, self.dim), np.float32)]
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[i:i + batch_size]))
            feats = self.model.encode_text(tokens.to(self.device), normalize=True)
            out.append(feats.float().cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def _rgb(image: Image.Image) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    return image if image.mode == "RGB" else image.convert("RGB")


def model_fingerprint(model: torch.nn.Module, model_cfg: dict) -> str:
    """sha256 over the canonical JSON config and each (name, dtype, shape, bytes) of the weights."""
    h = hashlib.sha256(json.dumps(model_cfg, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        # view as bytes: works for every dtype (bf16 has no numpy equivalent)
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _preprocess_cfg(model: torch.nn.Module) -> dict:
    cfg = asdict(PreprocessCfg())
    cfg.update(getattr(model.visual, "preprocess_cfg", {}) or {})
    image_size = model.visual.image_size
    cfg["size"] = list(image_size) if isinstance(image_size, tuple) else image_size
    return cfg


def _save(model: torch.nn.Module, model_cfg: dict, out_dir: Path, meta: dict) -> None:
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = {"model_cfg": model_cfg, "preprocess_cfg": _preprocess_cfg(model)}
    (out_dir / OPEN_CLIP_CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True))
    # safetensors refuses shared storage; every open_clip CLIP tensor is its own parameter.
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS_FILE))
    (out_dir / EMBEDDER_META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))


# ---------------------------------------------------------------------------- loading


def load_embedder(path: str | os.PathLike, model_name: str | None = None,
                  device: str = "cpu") -> Embedder:
    """Load an embedder from a directory or a checkpoint file.

    * a directory with ``open_clip_config.json`` (what ``train_embedder`` writes, or any
      open_clip ``local-dir`` / HF-hub snapshot): config, weights and tokenizer from there;
    * a checkpoint file (``.pt``/``.bin``/``.safetensors``/``.npz``) plus ``model_name``:
      a built-in open_clip config name (``"ViT-B-32"``, ``"ViT-B-16-SigLIP"``) or the path
      of a model config JSON file (registered with ``open_clip.add_model_config``).
    """
    p = Path(path)
    if p.is_dir():
        if not (p / OPEN_CLIP_CONFIG).is_file():
            raise FileNotFoundError(f"{p} is not an embedder directory: it has no {OPEN_CLIP_CONFIG} "
                                    f"(train one with train_embedder, or pass a checkpoint file + model_name)")
        name = f"local-dir:{p}"
        model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
        model_cfg = open_clip.get_model_config(name)
        tokenizer = _tokenizer(name)
    elif p.is_file():
        if not model_name:
            raise ValueError(f"{p} is a checkpoint file: pass model_name (an open_clip config name such "
                             f"as 'ViT-B-32', or the path of a model config JSON) to say its architecture")
        cfg_path = Path(model_name)
        if cfg_path.suffix == ".json" and cfg_path.is_file():
            open_clip.add_model_config(cfg_path)
            model_name = cfg_path.stem
        model_cfg = open_clip.get_model_config(model_name)
        if model_cfg is None:
            raise ValueError(f"unknown open_clip model {model_name!r}; expected one of open_clip.list_models() "
                             f"or a model config JSON path")
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=str(p), device=device)
        tokenizer = _tokenizer(model_name)
    else:
        raise FileNotFoundError(f"no embedder directory or checkpoint file at {p}")
    return Embedder(model, preprocess, tokenizer, model_cfg, source=str(p), device=device)


def _tokenizer(name: str) -> Callable:
    try:
        return open_clip.get_tokenizer(name)
    except Exception as e:  # HF / SigLIP tokenizers need files that cannot be downloaded here
        raise RuntimeError(f"cannot build the tokenizer for {name!r} offline ({type(e).__name__}: {e}); "
                           f"put its tokenizer files in a local open_clip directory (local-dir) and load "
                           f"that directory instead") from e


# ---------------------------------------------------------------------------- training


def _build(cfg: EmbedderConfig) -> tuple[torch.nn.Module, dict, Callable, Callable]:
    model_cfg = cfg.model_cfg()
    torch.manual_seed(cfg.seed)  # the initial weights are a function of the seed
    custom_text = model_cfg.get("custom_text", False) or "hf_model_name" in model_cfg["text_cfg"]
    if custom_text or "timm_model_name" in model_cfg["vision_cfg"]:
        raise ValueError("train_embedder builds plain open_clip CLIP towers (ViT / ModifiedResNet vision, "
                         "open_clip text transformer); HF/timm towers need downloads")
    model = open_clip.model.CLIP(**{k: v for k, v in model_cfg.items() if k != "custom_text"})
    model.visual.preprocess_cfg = {}
    preprocess = image_transform_v2(PreprocessCfg(**{**asdict(PreprocessCfg()), "size": model.visual.image_size}),
                                    is_train=False)
    tokenizer = open_clip.SimpleTokenizer(context_length=model_cfg["text_cfg"]["context_length"])
    return model, model_cfg, preprocess, tokenizer


def _check_pairs(pairs: Sequence, what: str) -> None:
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], Image.Image)
                and isinstance(pair[1], str)):
            raise TypeError(f"{what}[{i}] must be a (PIL.Image, caption str) pair, got {pair!r:.120}")


def text_to_image_recall(embedder: Embedder, pairs: Sequence[tuple[Image.Image, str]],
                         ks: Sequence[int] = (1, 5, 10)) -> tuple[dict[int, float], dict[int, float]]:
    """(recall@k, recall@k counting same-caption images as hits) of captions -> images."""
    if not pairs:
        return {}, {}
    img = embedder.embed_images([p[0] for p in pairs])
    txt = embedder.embed_texts([p[1] for p in pairs])
    sims = txt @ img.T
    # rank of the true image = how many images score strictly higher (ties favour the truth)
    order = np.argsort(-sims, axis=1, kind="stable")
    truth_rank = (sims > np.diag(sims)[:, None]).sum(axis=1)
    captions = np.array([p[1] for p in pairs], dtype=object)
    exact, by_caption = {}, {}
    for k in ks:
        exact[k] = float(np.mean(truth_rank < k))
        top = order[:, :k]
        by_caption[k] = float(np.mean([(captions[top[i]] == captions[i]).any() for i in range(len(pairs))]))
    return exact, by_caption


def train_embedder(pairs: Sequence[tuple[Image.Image, str]], out_dir: str | os.PathLike,
                   cfg: EmbedderConfig | None = None,
                   held_out: Sequence[tuple[Image.Image, str]] = ()) -> EmbedderReport:
    """Train an open_clip model contrastively on (image, caption) pairs; save it in ``out_dir``.

    Images are preprocessed once up front (fine for pools of tens of thousands of small
    images; a larger corpus wants a streaming loader).  Optimiser: AdamW with linear
    warm-up and cosine decay; loss: ``open_clip.loss.ClipLoss`` (symmetric InfoNCE with a
    learned temperature, clamped at 100 as in CLIP).
    """
    cfg = cfg or EmbedderConfig()
    _check_pairs(pairs, "pairs")
    _check_pairs(held_out, "held_out")
    if len(pairs) < 2:
        raise ValueError(f"contrastive training needs at least 2 pairs, got {len(pairs)}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / OPEN_CLIP_CONFIG).is_file():
        raise FileExistsError(f"{out} exists and does not hold an embedder; refusing to write into it")

    model, model_cfg, preprocess, tokenizer = _build(cfg)
    images = torch.stack([preprocess(_rgb(im)) for im, _ in pairs])
    tokens = tokenizer([c for _, c in pairs])
    n = len(pairs)
    batch = min(cfg.batch_size, n)
    per_epoch = n // batch  # drop the ragged last batch: ClipLoss prefers full batches
    total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    if total < 1:
        raise ValueError(f"nothing to train: steps={cfg.steps}, epochs={cfg.epochs}, {per_epoch} batches/epoch")

    warmup = min(cfg.warmup_steps, max(1, total // 5))

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, progress)))

    threads_before = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        losses, step, seconds = _train_loop(model, images, tokens, cfg, total, per_epoch, batch, lr_at)
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"training diverged (loss {losses[-1]}) at step {step}; lower lr ({cfg.lr})")
        embedder = Embedder(model, preprocess, tokenizer, model_cfg, source=str(out))
        recall, recall_cap = text_to_image_recall(embedder, held_out)
    finally:
        torch.set_num_threads(threads_before)
    chance = {k: min(1.0, k / len(held_out)) for k in recall} if held_out else {}
    report = EmbedderReport(dir=out, steps=step, seconds=seconds, recall=recall, recall_by_caption=recall_cap,
                            loss_curve=losses, n_train=n, n_held_out=len(held_out),
                            fingerprint=embedder.fingerprint, chance=chance)
    meta = {"format_version": FORMAT_VERSION, "config": asdict(cfg),
            "report": {k: v for k, v in asdict(report).items() if k != "loss_curve"},
            "loss_curve": losses}
    _save(model, model_cfg, out, meta)
    return report


def _train_loop(model, images, tokens, cfg: EmbedderConfig, total: int, per_epoch: int, batch: int,
                lr_at: Callable[[int], float]) -> tuple[list[float], int, float]:
    """The optimisation loop of ``train_embedder``: (losses, steps, seconds); exactly ``total`` steps."""
    n = len(images)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = ClipLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    t0 = time.monotonic()
    model.train()
    step = 0
    while step < total:
        perm = torch.randperm(n, generator=gen)
        for b in range(per_epoch):
            if step >= total:
                break
            idx = perm[b * batch:(b + 1) * batch]
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            img_f, txt_f, scale = model(images[idx], tokens[idx])
            loss = loss_fn(img_f, txt_f, scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(float(loss.detach()))
            step += 1
    return losses, step, time.monotonic() - t0
