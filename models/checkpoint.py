"""Role checkpoints on disk: the card, its file manifest, atomic publication and recovery.

Every role of every iteration ends as a full Hugging Face checkpoint folder
plus a card, `zeroforge_train.json`, that says how it was made (parent,
hyperparameters, steps, recipe state) and lists every file with its size and
sha256. This module is the one place that knows that layout; training
(`models.grpo`), the iteration store (`assets.store`) and lineage
(`assets.lineage`) all go through it.

Publication is atomic: model files go to a staging sibling
(`.tmp-<name>-*`), the card is written last (it is the completion marker), and
the staging folder replaces the checkpoint in one rename, carrying the
trainer's resume state (`trainer/`) along. A process killed at any point
leaves either the previous complete checkpoint or no card at all;
`recover_checkpoint_dir` tidies what such a kill left before a rerun.

    with staging_dir(out) as staging:
        model.save_pretrained(staging)
        write_card(staging, {"parent": str(parent), "steps": 20})
    # out is now complete: checkpoint_complete(out) is True
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.files import atomic_write_json, sha256_file

CARD = "zeroforge_train.json"  # the training card: how a role checkpoint was made (written last)
BUILD_CARD = "zeroforge_build.json"  # the embedded model's architecture card (carried along to every child)
HISTORY = "log_history.json"  # TRL's per-step log, next to the weights
TRAINER_DIR = "trainer"  # resumable trainer checkpoints (`checkpoint-N`), never part of the content
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def file_manifest(folder: Path, skip: tuple[str, ...] = (TRAINER_DIR, CARD)) -> dict[str, dict]:
    """{relative path: {bytes, sha256}} of every file under `folder` except `skip` (top-level names)."""
    out = {}
    folder = Path(folder)
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and rel.parts[0] not in skip:
            out[rel.as_posix()] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    return out


def read_card(path: Path) -> dict:
    """The checkpoint's card; {} when there is none (a base model, or an incomplete checkpoint)."""
    try:
        return json.loads((Path(path) / CARD).read_text())
    except (OSError, ValueError):
        return {}


def write_card(staging: Path, card: dict) -> dict:
    """Add the manifest of `staging` and write the card there, last: the checkpoint's completion marker."""
    card = {**card, "files": file_manifest(staging)}
    atomic_write_json(Path(staging) / CARD, card)
    return card


def checkpoint_complete(path: Path) -> bool:
    """Complete once its card exists and every file the card lists is there with the recorded size.

    Publication is atomic, so this guards against anything else: weights without a card (a kill under an
    older layout, a manual copy), a truncated card, or files removed or truncated since (sizes are
    compared here; `zeroforge lineage` compares hashes).
    """
    path = Path(path)
    card = read_card(path)
    if not card or not (path / "config.json").is_file():
        return False
    files = card.get("files")
    if files is None:  # cards written before manifests: require some weights
        return any((path / w).is_file() for w in _WEIGHTS)
    return all((path / rel).is_file() and (path / rel).stat().st_size == f["bytes"] for rel, f in files.items())


def recover_checkpoint_dir(out: Path) -> None:
    """Undo what a kill during publication left behind, before training resumes.

    `trainer/` (the resume state) is moved back from a staging folder if the swap did not finish, and
    stale staging / old folders are removed. The final checkpoint itself is never adopted from staging:
    the resumed training reaches the last step again (cheaply) and publishes anew.
    """
    out = Path(out)
    siblings = sorted(out.parent.glob(f".tmp-{out.name}-*")) + sorted(out.parent.glob(f".old-{out.name}-*"))
    for d in siblings:
        if not (out / TRAINER_DIR).is_dir() and (d / TRAINER_DIR).is_dir():
            out.mkdir(parents=True, exist_ok=True)
            (d / TRAINER_DIR).rename(out / TRAINER_DIR)
        shutil.rmtree(d, ignore_errors=True)


def _publish(staging: Path, out: Path) -> None:
    """Make the complete `staging` folder (card written last) the checkpoint at `out`, keeping `out/trainer`."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / TRAINER_DIR).exists():
        (out / TRAINER_DIR).rename(staging / TRAINER_DIR)
    old = out.parent / f".old-{out.name}-{uuid.uuid4().hex[:8]}"
    out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A staging folder for checkpoint `out`; published on exit when it holds a card, else discarded.

    If publishing fails part-way the resume state (`trainer/`) is put back, so a rerun resumes.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".tmp-{out.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        yield staging
        if not (staging / CARD).is_file():
            raise RuntimeError(f"checkpoint staging {staging} has no card: write_card() must come last")
        _publish(staging, out)
    finally:
        if staging.exists():
            if (staging / TRAINER_DIR).is_dir() and not (out / TRAINER_DIR).exists():
                out.mkdir(parents=True, exist_ok=True)
                (staging / TRAINER_DIR).rename(out / TRAINER_DIR)
            shutil.rmtree(staging, ignore_errors=True)


def publish_unchanged(parent_dir: Path, out_dir: Path, card: dict) -> dict:
    """Publish the parent's weights as a checkpoint without training (0 steps), with `card` saying why.

    A recipe can pause a role for an iteration (Vision-Zero's Iterative-SPO trains one phase at a time);
    the next iteration still finds a complete checkpoint with a card, published like a trained one.
    """
    parent, out = Path(parent_dir), Path(out_dir)
    recover_checkpoint_dir(out)
    with staging_dir(out) as staging:
        for p in parent.iterdir():  # model, processor and build card; not the parent's own card, history or plots
            if p.is_file() and p.name not in (CARD, HISTORY, "rewards.png"):
                shutil.copy2(p, staging / p.name)
        (staging / HISTORY).write_text("[]")
        written = write_card(staging, {"parent": str(parent), "steps": 0, "seconds": 0.0, "resumed_from": None,
                                       "dataset_rows": 0, **card})
    return written
