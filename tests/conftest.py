"""Shared fixtures: offline mode, and one tiny model built per test session.

The ~1M-parameter model is built once (tokenizer trained on the world's
corpus, random init, no warm start) and reused read-only; tests that train
copy it first.
"""

import os
import random
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# benchmark_scores runs the evaluation harness on every iteration; a few samples suffice to test the plumbing
os.environ.setdefault("ZEROFORGE_BENCHMARK_LIMIT", "24")

import models  # noqa: E402,F401  (applies the torchvision fallback before transformers loads)


@pytest.fixture(scope="session")
def world_images():
    from retrieval.world import sample_world

    return sample_world(30, seed=123)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, world_images):
    from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
    from recipes.bootstrap import solver_examples, tokenizer_corpus

    out = tmp_path_factory.mktemp("tiny_vlm")
    examples = solver_examples(world_images, random.Random(0))
    build_tiny_vlm(out, tokenizer_corpus(examples), TINY_SPECS["tiny"])
    return out


@pytest.fixture
def tiny_model_copy(tiny_model_dir, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(tiny_model_dir, dst)
    return dst
