"""The default engine (one prefill per question, shared KV cache) against the `model.generate` reference.

`TransformersEngine` replaces `generate(num_return_sequences=n)` with its own
decode loop; these tests pin what must not change: greedy strings identical
to `generate`, sampled answers from the same distribution, seeded calls
reproducible, and each prompt prefilled once however many samples it gets.
All on the session's tiny random-init model (tests/conftest.py).
"""

from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency
from transformers import TemperatureLogitsWarper, TopPLogitsWarper

from models.generation import GenerationRequest, HFGenerateEngine, SamplingParams, TransformersEngine, warp_logits
from models.loading import load_vlm


@pytest.fixture(scope="module")
def mixed_requests(world_images):
    """Prompts of different lengths with images of different sizes, two images, and none: padding differs per row."""
    ims = [wi.image for wi in world_images]
    return [
        GenerationRequest("What color is the circle?", [ims[0]]),
        GenerationRequest("How many shapes are there in the image? Answer with a number.", [ims[1].resize((48, 32))]),
        GenerationRequest("Describe.", [ims[2].resize((96, 64)), ims[3]]),
        GenerationRequest("Say something about shapes and colors.", []),
        GenerationRequest("Which shape is the largest?", [ims[4]], system="Answer briefly."),
    ]


@pytest.fixture(scope="module")
def few_answer_model(tiny_model_dir):
    """The tiny model with its logits pushed toward three words and `<|im_end|>`.

    A random-init model spreads its samples over a thousand tokens, so two
    samplers' answer frequencies could not be compared. A fixed bias on the
    output layer (added by a hook, so both engines see the same model)
    concentrates the answers on a few dozen short strings that still depend
    on the prompt and image (the scaled-up random weights), and ends many
    replies early, which exercises the per-row stop.
    """
    model, proc = load_vlm(tiny_model_dir, device="cpu")
    tok = proc.tokenizer
    bias = torch.zeros(model.lm_head.out_features)
    bias[[tok.convert_tokens_to_ids(w) for w in ("red", "blue", "A")]] = 7.0
    bias[tok.convert_tokens_to_ids("<|im_end|>")] = 7.5
    with torch.no_grad():
        model.lm_head.weight.mul_(3.0)
    model.lm_head.register_forward_hook(lambda module, args, out: out + bias.to(out.dtype))
    return model, proc


@pytest.mark.parametrize("variant", ["random", "few_answers"])
def test_greedy_equals_generate(variant, tiny_model_dir, few_answer_model, mixed_requests):
    model, proc = few_answer_model if variant == "few_answers" else load_vlm(tiny_model_dir, device="cpu")
    params = SamplingParams(max_new_tokens=10)
    reference = HFGenerateEngine(model, proc, batch_size=len(mixed_requests)).generate(mixed_requests, params)
    for batch_size in (len(mixed_requests), 2, 1):
        assert TransformersEngine(model, proc, batch_size=batch_size).generate(mixed_requests, params) == reference
    # dropping stopped rows from the cache (here after every stop) changes nothing either
    eager = TransformersEngine(model, proc, batch_size=len(mixed_requests), compact_fraction=0.0)
    assert eager.generate(mixed_requests, params) == reference
    if variant == "few_answers":
        lengths = {len(proc.tokenizer(o[0])["input_ids"]) for o in reference}
        assert len(lengths) > 1, "replies should stop at different steps"


def test_greedy_equals_generate_on_qwen3_vl(tmp_path, world_images):
    """The multimodal positions come from the model's own rope index, so Qwen3-VL works as well."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    from models.tiny_vlm import TINY_SPECS, make_processor
    from models.tokenizer import train_tokenizer

    tok = train_tokenizer(["a red circle", "what color is the circle"], vocab_size=300)
    ids = tok.convert_tokens_to_ids
    cfg = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=8,
                           out_hidden_size=64, num_position_embeddings=64, deepstack_visual_indexes=[]),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    torch.manual_seed(0)
    Qwen3VLForConditionalGeneration(cfg).save_pretrained(tmp_path)
    make_processor(TINY_SPECS["tiny"], tok).save_pretrained(tmp_path)
    model, proc = load_vlm(tmp_path, device="cpu")
    ims = [wi.image for wi in world_images]
    reqs = [GenerationRequest("what color is the circle", [ims[0]]), GenerationRequest("a red circle", [ims[1].resize((48, 32))]),
            GenerationRequest("circle", [])]
    params = SamplingParams(max_new_tokens=8)
    assert TransformersEngine(model, proc, batch_size=3).generate(reqs, params) == HFGenerateEngine(model, proc, batch_size=3).generate(reqs, params)


def test_warp_matches_transformers_logits_processors():
    """Temperature and top-p give exactly the scores transformers' warpers give (the same -inf set too)."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 300, generator=g) * 3
    logits[0, :5] = 10.0  # ties at the top
    for temperature, top_p in ((1.0, 1.0), (0.7, 0.9), (1.3, 0.5), (1.0, 0.01)):
        ours = warp_logits(logits, temperature, top_p)
        theirs = TemperatureLogitsWarper(temperature)(None, logits.clone())
        if top_p < 1.0:
            theirs = TopPLogitsWarper(top_p)(None, theirs)
        assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
        assert torch.allclose(ours[~torch.isinf(ours)], theirs[~torch.isinf(theirs)], rtol=0, atol=0)


def _answer_counts(engine, requests, seeds, params):
    counts = Counter()
    for seed in seeds:
        p = SamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                           max_new_tokens=params.max_new_tokens, seed=seed)
        for answers in engine.generate(requests, p):
            counts.update(answers)
    return counts


def _compare(a: Counter, b: Counter, min_count: int = 20) -> tuple[float, float]:
    """(total-variation distance, chi-square p) of two answer histograms; rare answers pooled into one cell."""
    keys = sorted(set(a) | set(b), key=lambda k: (-(a[k] + b[k]), k))
    common = [k for k in keys if a[k] + b[k] >= min_count]
    rare = [k for k in keys if a[k] + b[k] < min_count]
    table = np.array([[c[k] for k in common] + [sum(c[k] for k in rare)] for c in (a, b)], dtype=float)
    table = table[:, table.sum(0) > 0]
    freq = table / table.sum(1, keepdims=True)
    return 0.5 * float(np.abs(freq[0] - freq[1]).sum()), float(chi2_contingency(table)[1])


def test_sampled_answers_follow_generates_distribution(few_answer_model, world_images):
    """Two-sample test on 1,920 answers per engine, disjoint fixed seeds (deterministic: it cannot flake).

    Same sampling settings must be indistinguishable (p well above 1e-4, small
    distance); a control at another temperature must be told apart easily,
    which shows the test has the power to catch a wrong sampler.
    """
    model, proc = few_answer_model
    questions = ["What color is the circle?", "Which shape is it?", "Name a color."]
    requests = [GenerationRequest(questions[i % 3], [wi.image]) for i, wi in enumerate(world_images[:24])]
    params = SamplingParams(n=20, temperature=1.3, top_p=0.9, max_new_tokens=3)
    reference = _answer_counts(HFGenerateEngine(model, proc, batch_size=24), requests, range(4), params)
    engine = TransformersEngine(model, proc, batch_size=24)
    ours = _answer_counts(engine, requests, range(100, 104), params)
    assert sum(reference.values()) == sum(ours.values()) == 24 * 20 * 4
    tv, p = _compare(reference, ours)
    assert tv < 0.1 and p > 1e-4, (tv, p)
    colder = SamplingParams(n=20, temperature=0.7, top_p=0.9, max_new_tokens=3)
    tv_control, p_control = _compare(reference, _answer_counts(engine, requests, range(200, 204), colder))
    assert tv_control > 0.25 and p_control < 1e-10, (tv_control, p_control)


def test_seeded_sampling_is_reproducible_and_leaves_global_rng_alone(few_answer_model, mixed_requests):
    model, proc = few_answer_model
    engine = TransformersEngine(model, proc, batch_size=3)
    params = SamplingParams(n=6, temperature=1.0, max_new_tokens=6, seed=11)
    state = torch.get_rng_state()
    first = engine.generate(mixed_requests, params)
    assert torch.equal(torch.get_rng_state(), state)
    assert engine.generate(mixed_requests, params) == first
    other = SamplingParams(n=6, temperature=1.0, max_new_tokens=6, seed=12)
    assert engine.generate(mixed_requests, other) != first
    assert all(len(answers) == 6 for answers in first) and len(first) == len(mixed_requests)


def test_each_prompt_is_prefilled_once_for_its_n_samples(few_answer_model, mixed_requests):
    """The vision tower sees each image once and the prompt runs once, not n times as in `generate`."""
    model, proc = few_answer_model
    images_seen, prompt_rows = [], []
    h1 = model.model.visual.register_forward_hook(lambda m, args, kwargs, out: images_seen.append(len(kwargs["grid_thw"])), with_kwargs=True)
    h2 = model.model.language_model.register_forward_pre_hook(
        lambda m, args, kwargs: prompt_rows.append(kwargs["inputs_embeds"].shape[0]) if kwargs["inputs_embeds"].shape[1] > 1 else None,
        with_kwargs=True)
    try:
        TransformersEngine(model, proc, batch_size=8).generate(mixed_requests, SamplingParams(n=7, temperature=1.0, max_new_tokens=4, seed=0))
        n_images = sum(len(r.images) for r in mixed_requests)
        assert images_seen == [n_images] and prompt_rows == [len(mixed_requests)]
        images_seen.clear(), prompt_rows.clear()
        HFGenerateEngine(model, proc, batch_size=8).generate(mixed_requests, SamplingParams(n=7, temperature=1.0, max_new_tokens=4, seed=0))
        # what the reference pays: the language model prefills every prompt n times (the vision tower runs n
        # times too before transformers 5.2x, which encodes the images once and repeats the features)
        assert prompt_rows == [7 * len(mixed_requests)]
    finally:
        h1.remove(), h2.remove()
