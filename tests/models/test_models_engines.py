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
