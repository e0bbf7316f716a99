"""`embedder`: the text-image model the Active-Zero Searcher's queries are searched with, and the pool's vectors.

Either trains a small open_clip model contrastively on the pool's own
(image, caption) pairs (`retrieval.embedder.train_embedder`, reported with
text->image recall@1/5/10 on held-out captions), or loads a user's
pretrained open_clip checkpoint from a path. Then it embeds the pool
(`ImagePool.embed`, incremental per embedder fingerprint) and records the
embedder next to the pool (`ImagePool.set_embedder`), where the recipes find
it. Re-embedding happens only when the embedder or the pool changes: a trained
embedder lives under the hash of its config and the pool's ids, so the same
pool and config reuse it, and its vectors, untouched.
"""

import hashlib
import json
import random
from pathlib import Path

import dagster as dg

from assets.lineage import artifact, record_lineage
from assets.resources import ZeroforgeHome
from evaluation.plots import curves, png_markdown
from models.files import atomic_dir
from retrieval.pool import ImagePool


class EmbedderAssetConfig(dg.Config):
    """Train on the pool's captions (default), or set `checkpoint_path` to a user's open_clip checkpoint."""

    checkpoint_path: str = ""  # a directory with open_clip_config.json, or a checkpoint file (+ model_name)
    model_name: str = ""  # open_clip architecture of a checkpoint file, e.g. "ViT-B-32"
    architecture: str = "small"  # trained model: "small", "tiny" or an open_clip config name (from scratch)
    steps: int = 240
    batch_size: int = 64
    learning_rate: float = 3e-3
    held_out: int = 200  # pool captions kept out of training for recall@k
    seed: int = 0


def _split(pool: ImagePool, held_out: int, seed: int) -> tuple[list[str], list[str]]:
    ids = sorted(pool.ids())
    random.Random(seed).shuffle(ids)
    n_held = min(held_out, len(ids) // 5)
    return ids[n_held:], ids[:n_held]


def _pairs(pool: ImagePool, ids: list[str]) -> list[tuple]:
    captions = dict(zip(*(lambda df: (df["id"], df["caption"]))(pool.records())))
    return [(im, captions[i] or "") for i, im in zip(ids, pool.load_images(ids))]


@dg.asset(group_name="foundation", deps=["image_pool"], kinds={"pytorch", "lancedb"})
def embedder(context: dg.AssetExecutionContext, config: EmbedderAssetConfig, home: ZeroforgeHome) -> dg.MaterializeResult:
    """The pool's text-image embedder and its image vectors (trained on pool captions, or a user's checkpoint)."""
    from retrieval.embedder import EMBEDDER_META, OPEN_CLIP_CONFIG, EmbedderConfig, load_embedder, text_to_image_recall, train_embedder

    pool = ImagePool(home.pool_root())
    if pool.count() < 10:
        raise ValueError(f"the pool at {pool.root} has {pool.count()} images; materialize image_pool first")
    train_ids, held_ids = _split(pool, config.held_out, config.seed)
    held = _pairs(pool, held_ids)
    md: dict = {}
    if config.checkpoint_path:
        emb = load_embedder(config.checkpoint_path, model_name=config.model_name or None)
        exact, by_caption = text_to_image_recall(emb, held)
        source, trained, path = "user checkpoint", False, config.checkpoint_path
    else:
        cfg = EmbedderConfig(model=config.architecture, steps=config.steps, batch_size=config.batch_size, lr=config.learning_rate,
                             seed=config.seed, num_threads=1)
        key = hashlib.sha256(json.dumps({"config": config.model_dump(), "ids": sorted(train_ids + held_ids)}, sort_keys=True).encode())
        final = home.path / "models" / f"embedder-{key.hexdigest()[:12]}"
        trained = not (final / OPEN_CLIP_CONFIG).is_file()
        if trained:
            with atomic_dir(final) as tmp:
                # one thread: on a small shared CPU OpenMP threads spin-wait for each other (see EmbedderConfig)
                train_embedder(_pairs(pool, train_ids), tmp, cfg, held_out=held)
        else:
            context.log.info(f"reusing the embedder trained with this config on this pool at {final}")
        meta = json.loads((final / EMBEDDER_META).read_text())
        report = meta["report"]
        exact = {int(k): v for k, v in report["recall"].items()}
        by_caption = {int(k): v for k, v in report["recall_by_caption"].items()}
        png = curves({"contrastive loss": meta["loss_curve"]}, "embedder training loss")
        md.update({"train_steps": report["steps"], "train_seconds": round(report["seconds"], 1), "train_pairs": report["n_train"],
                   "embedder loss curve (PNG)": dg.MetadataValue.md(png_markdown(png, "loss"))})
        emb = load_embedder(final)
        source, path = "trained on pool captions", str(final)
    rep = pool.embed(emb)
    pool.set_embedder(path, emb.fingerprint, config.model_name or None)
    context.log.info(f"embedder {emb.fingerprint[:12]} ({source}): recall@1/5/10 {exact}; embedded {rep.embedded_new} new, "
                     f"{rep.skipped_existing} reused")
    out_path = Path(path)
    rec = record_lineage(home.path, "embedder", None, artifact("dir" if out_path.is_dir() else "file", out_path),
                         config=config.model_dump(), run_id=context.run_id, log=context.log)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(f"{emb.fingerprint[:16]}-{rep.embedded_new + rep.skipped_existing}"),
        metadata={
            "path": dg.MetadataValue.path(path),
            "source": source,
            "trained": trained,
            "fingerprint": emb.fingerprint,
            "recall@1": exact.get(1, 0.0), "recall@5": exact.get(5, 0.0), "recall@10": exact.get(10, 0.0),
            "recall_by_caption@1": by_caption.get(1, 0.0), "recall_by_caption@5": by_caption.get(5, 0.0),
            "recall_by_caption@10": by_caption.get(10, 0.0),
            "held_out_captions": len(held),
            "chance@5": min(1.0, 5 / max(1, len(held))),
            "embedded_rows": rep.embedded_new + rep.skipped_existing,
            "embedded_new": rep.embedded_new,
            "embedding": f"re-embedded {rep.embedded_new} images" if rep.embedded_new else "reused (no new images, same embedder)",
            "embed_seconds": round(rep.seconds, 1),
            "vector_table": rep.table,
            "content_hash": rec["output"]["hash"],
            **md,
        },
    )
