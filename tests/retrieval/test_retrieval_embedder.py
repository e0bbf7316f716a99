"""Tests for retrieval.embedder (training, save/load, fingerprints) and ImagePool.embed/search_text.

One small open_clip model is trained once per module for a fixed number of steps on
procedural world images (a few seconds on CPU) and reused read-only; tests that change
weights load their own copy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from retrieval.embedder import OPEN_CLIP_CONFIG, EmbedderConfig, load_embedder, text_to_image_recall, train_embedder
from retrieval.pool import ImagePool
from retrieval.sources import build_source
from retrieval.world import sample_world

# Smaller than the default "tiny" model so the module trains in seconds on 2 shared cores.
SMALL = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32, "mlp_ratio": 2.0},
    "text_cfg": {"context_length": 48, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2, "mlp_ratio": 2.0},
}
N_TRAIN, N_HELD = 200, 60
STEPS = 20


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Two OpenMP threads on 2 busy cores spin-wait for each other (20 steps: 30 s vs 1.7 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pairs():
    world = sample_world(N_TRAIN + N_HELD, seed=5)
    return [(w.image, w.caption) for w in world]


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("embedder") / "small"
    cfg = EmbedderConfig(model=SMALL, steps=STEPS, batch_size=32, lr=3e-3, warmup_steps=3, seed=0, num_threads=1)
    return train_embedder(pairs[:N_TRAIN], out, cfg, held_out=pairs[N_TRAIN:])


def test_training_beats_chance_on_held_out_captions(trained):
    assert trained.steps == STEPS == len(trained.loss_curve)
    assert (trained.n_train, trained.n_held_out) == (N_TRAIN, N_HELD)
    assert np.mean(trained.loss_curve[-5:]) < np.mean(trained.loss_curve[:5])  # it learned something
    assert set(trained.recall) == {1, 5, 10}
    assert trained.recall[1] <= trained.recall[5] <= trained.recall[10]
    assert trained.chance[5] == pytest.approx(5 / N_HELD)
    assert trained.recall[5] > 5 / N_HELD, trained.recall
    # a same-caption image also counts there, so it can only be higher
    assert all(trained.recall_by_caption[k] >= trained.recall[k] for k in (1, 5, 10))


def test_saved_in_open_clip_local_dir_layout(trained):
    cfg = json.loads((trained.dir / OPEN_CLIP_CONFIG).read_text())
    assert cfg["model_cfg"]["embed_dim"] == 64 and cfg["preprocess_cfg"]["size"] == [64, 64]
    meta = json.loads((trained.dir / "embedder.json").read_text())
    assert meta["config"]["steps"] == STEPS and meta["report"]["fingerprint"] == trained.fingerprint
    assert len(meta["loss_curve"]) == STEPS


def test_load_round_trip_reproduces_embeddings_and_recall(trained, pairs):
    a, b = load_embedder(trained.dir), load_embedder(trained.dir)
    assert a.fingerprint == b.fingerprint == trained.fingerprint and a.dim == 64
    images = [p[0] for p in pairs[N_TRAIN:N_TRAIN + 12]]
    texts = [p[1] for p in pairs[N_TRAIN:N_TRAIN + 12]]
    ia, ta = a.embed_images(images), a.embed_texts(texts)
    assert ia.shape == ta.shape == (12, 64) and ia.dtype == ta.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ia, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ta, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(ia, b.embed_images(images))
    np.testing.assert_array_equal(ta, b.embed_texts(texts))
    # batching does not change the result beyond float rounding
    np.testing.assert_allclose(a.embed_images(images, batch_size=5), ia, atol=1e-5)
    # the loaded model scores the held-out set exactly as the trained one did
    recall, _ = text_to_image_recall(a, pairs[N_TRAIN:])
    assert recall == trained.recall


def test_user_checkpoint_file_with_architecture(trained, tmp_path, pairs):
    """The deployment path: a plain state_dict file plus an open_clip architecture."""
    ref = load_embedder(trained.dir)
    arch = tmp_path / "zf-test-small-clip.json"
    arch.write_text(json.dumps(json.loads((trained.dir / OPEN_CLIP_CONFIG).read_text())["model_cfg"]))
    ckpt = tmp_path / "weights.pt"
    torch.save(ref.model.state_dict(), ckpt)
    user = load_embedder(ckpt, model_name=str(arch))
    assert user.fingerprint == ref.fingerprint
    images = [p[0] for p in pairs[:6]]
    np.testing.assert_array_equal(user.embed_images(images), ref.embed_images(images))
    with pytest.raises(ValueError, match="model_name"):
        load_embedder(ckpt)
    with pytest.raises(ValueError, match="unknown open_clip model"):
        load_embedder(ckpt, model_name="no-such-arch")


def test_fingerprint_follows_weights(trained):
    e = load_embedder(trained.dir)
    before = e.fingerprint
    with torch.no_grad():
        e.model.visual.conv1.weight[0, 0, 0, 0] += 1e-3
    assert e.fingerprint == before  # cached until told
    e.refresh()
    assert e.fingerprint != before
    assert load_embedder(trained.dir).fingerprint == before


def test_bad_inputs_fail_loudly(trained, pairs, tmp_path):
    with pytest.raises(TypeError, match="caption"):
        train_embedder([(pairs[0][0], 3), pairs[1]], tmp_path / "x", EmbedderConfig(model=SMALL, steps=1))
    with pytest.raises(ValueError, match="at least 2"):
        train_embedder(pairs[:1], tmp_path / "x", EmbedderConfig(model=SMALL, steps=1))
    with pytest.raises(ValueError, match="unknown open_clip model config"):
        train_embedder(pairs[:4], tmp_path / "x", EmbedderConfig(model="no-such-arch", steps=1))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        train_embedder(pairs[:4], tmp_path / "busy", EmbedderConfig(model=SMALL, steps=1))
    with pytest.raises(FileNotFoundError):
        load_embedder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="open_clip_config"):
        load_embedder(tmp_path / "busy")
    with pytest.raises(TypeError, match="list"):
        load_embedder(trained.dir).embed_texts("a red circle")


# ---------------------------------------------------------------------- ImagePool.embed / search_text


def test_pool_embeds_only_new_images_and_searches(trained, tmp_path):
    emb = load_embedder(trained.dir)
    pool = ImagePool(tmp_path / "pool", maxcount=10)
    pool.add(build_source("procedural", n=24, seed=3).iter_items())
    with pytest.raises(LookupError, match="embed"):
        pool.search_text(emb, "a bar chart")

    first = pool.embed(emb, batch_size=8)
    assert (first.embedded_new, first.skipped_existing) == (24, 0)
    assert first.fingerprint == emb.fingerprint and first.index.kind == "flat"
    index = pool.vector_index(emb)
    version = index.version()
    second = pool.embed(emb)
    assert (second.embedded_new, second.skipped_existing) == (0, 24)
    assert pool.vector_index(emb).version() == version  # nothing written

    pool.add(build_source("procedural", n=6, seed=4).iter_items())
    third = pool.embed(emb)
    assert (third.embedded_new, third.skipped_existing) == (6, 24)
    index = pool.vector_index(emb)
    assert index.count() == pool.count() == 30 and sorted(index.ids()) == sorted(pool.ids())

    # stored vectors are the embedder's vectors of the pool's pixels
    some = pool.ids()[:3]
    stored = index.rows(f"id IN ({', '.join(repr(i) for i in some)})", with_vectors=True).set_index("id")
    fresh = emb.embed_images([pool.get_image(i) for i in some])
    np.testing.assert_allclose(np.stack(stored.loc[some, "vector"].to_list()), fresh, atol=1e-5)

    caption = pool.records().iloc[0]["caption"]
    hits = pool.search_text(emb, caption, k=5)
    assert len(hits) == 5 and len({h[0] for h in hits}) == 5
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert set(h[0] for h in hits) <= set(pool.ids())

    hard = pool.search_text(emb, caption, k=5, where="difficulty >= 4")
    hard_ids = set(pool.records("difficulty >= 4")["id"])
    assert hard and {h[0] for h in hard} <= hard_ids

    assert pool.mark_seen(emb, [hits[0][0]], iteration=1) == 1
    fresh_hits = pool.search_text(emb, caption, k=5, where="seen_iteration = -1")
    assert hits[0][0] not in {h[0] for h in fresh_hits}


def test_new_embedder_gets_its_own_table(trained, tmp_path):
    emb = load_embedder(trained.dir)
    other = load_embedder(trained.dir)
    with torch.no_grad():
        other.model.text_projection.mul_(1.01)
    other.refresh()
    pool = ImagePool(tmp_path / "pool")
    pool.add(build_source("procedural", n=5, seed=1).iter_items())
    assert pool.embed(emb).embedded_new == 5
    # a changed embedder re-embeds everything, into a table of its own
    report = pool.embed(other)
    assert report.embedded_new == 5 and report.table != pool.vector_index(emb).table_name
