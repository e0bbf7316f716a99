import pytest

from models.generation import InferenceEngine, TransformersEngine
from models.vllm_engine import VLLMEngine, vllm_available
from recipes.core.context import default_engine_factory


def test_engine_factory_uses_transformers_without_vllm_or_gpu(tiny_model_dir):
    engine = default_engine_factory("cpu", batch_size=8)(tiny_model_dir)
    assert isinstance(engine, TransformersEngine) and isinstance(engine, InferenceEngine)
    assert engine.batch_size == 8


@pytest.mark.skipif(vllm_available(), reason="vLLM is installed here; this checks the error when it is not")
def test_vllm_engine_says_how_to_get_it(tiny_model_dir):
    with pytest.raises(ImportError, match="gpu"):
        VLLMEngine(str(tiny_model_dir))


def test_vllm_engine_turns_prefix_caching_on(tiny_model_dir, monkeypatch):
    """With vLLM absent here, a stand-in module records what the engine asks of it."""
    import importlib.machinery
    import sys
    import types

    seen = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen["llm"] = kwargs

        def generate(self, prompts, sampling, use_tqdm=False):
            seen["sampling"] = sampling
            out = types.SimpleNamespace(text=" hi ")
            return [types.SimpleNamespace(outputs=[out] * sampling.kwargs["n"]) for _ in prompts]

    fake = types.ModuleType("vllm")
    fake.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    fake.LLM = FakeLLM
    fake.SamplingParams = lambda **kwargs: types.SimpleNamespace(kwargs=kwargs)
    monkeypatch.setitem(sys.modules, "vllm", fake)

    from models.generation import GenerationRequest, SamplingParams

    engine = VLLMEngine(str(tiny_model_dir))
    assert seen["llm"]["enable_prefix_caching"] is True
    out = engine.generate([GenerationRequest("What color?")], SamplingParams(n=3, temperature=1.0, seed=1))
    assert out == [["hi", "hi", "hi"]] and seen["sampling"].kwargs["n"] == 3
