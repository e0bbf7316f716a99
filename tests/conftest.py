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

import models.compat  # noqa: E402,F401  (applies the torchvision fallback before transformers loads)


@pytest.fixture(scope="session")
def world_images():
    from retrieval.world import sample_world

    return sample_world(30, seed=123)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, world_images):
    from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
    from recipes.core.bootstrap import solver_examples, tokenizer_corpus

    out = tmp_path_factory.mktemp("tiny_vlm")
    examples = solver_examples(world_images, random.Random(0))
    build_tiny_vlm(out, tokenizer_corpus(examples), TINY_SPECS["tiny"])
    return out


@pytest.fixture
def tiny_model_copy(tiny_model_dir, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(tiny_model_dir, dst)
    return dst


@pytest.fixture(scope="session")
def mmzero_base(tmp_path_factory):
    """The tiny model taught the MM-Zero formats on one templated item (Proposer text, Coder SVG, the Solver's
    answers to its two questions): its first proposals parse and its first programs render, in seconds."""
    import torch

    from models.formats import solver_prompt, solver_target
    from models.loading import load_vlm
    from models.tiny_vlm import TINY_SPECS, build_tiny_vlm
    from models.warmstart import SupervisedExample, WarmStartConfig, supervised_finetune
    from recipes.core.bootstrap import tokenizer_corpus
    from recipes.mmzero.formats import mmzero_examples, parse_proposer
    from retrieval.world import generate

    wi = generate("shapes", seed=0, difficulty=1)
    proposer, coder = mmzero_examples([wi], random.Random(0))
    p = parse_proposer(proposer.target)
    solver = [SupervisedExample(solver_prompt(q, list(o)), solver_target(a), [wi.image], "color")
              for q, o, a in ((p.easy, p.easy_options, p.easy_answer), (p.hard, p.hard_options, p.hard_answer))]
    train = [proposer, coder, *solver]
    out = tmp_path_factory.mktemp("mmzero_base")
    build_tiny_vlm(out, tokenizer_corpus(train), TINY_SPECS["tiny"])
    model, proc = load_vlm(out, device="cpu", dtype=torch.float32)
    supervised_finetune(model, proc, train, WarmStartConfig(steps=80, batch_size=4, learning_rate=1e-2, warmup_steps=5), progress=False)
    model.save_pretrained(out)
    return out
