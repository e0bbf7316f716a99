"""vLLM behind the `InferenceEngine` interface, for inference-only stages on GPU.

Task generation, m-sample majority voting and evaluation are pure inference;
on a GPU, vLLM's continuous batching makes them several times faster than
`model.generate`. vLLM pins its own CUDA torch, so it is an optional extra
(`pip install zeroforge[gpu]`, ideally in the GPU image's environment) and
never part of the CPU install: `recipes.loop.default_engine_factory` uses
this engine only when `vllm_available()` and the device is CUDA, and falls
back to `models.generation.TransformersEngine` otherwise.

Prompts are rendered with the model's own Hugging Face processor (the same
chat template the trainer uses), and images are passed as PIL through
`multi_modal_data`, so both engines see byte-identical prompts.

One prefill per question: prefix caching is on (`enable_prefix_caching=True`),
so the n samples of a request (vLLM forks them from one sequence) and any
later request with the same prompt and image reuse the cached KV blocks of
the prompt instead of prefilling it again, which the CPU engine
(`models.generation.TransformersEngine`) gets by repeating its KV cache.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from models.generation import GenerationRequest, SamplingParams, build_messages


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


class VLLMEngine:
    """`InferenceEngine` on vLLM: continuous batching, prompt KV blocks shared through prefix caching."""

    name = "vllm"

    def __init__(self, model_dir: str, gpu_memory_utilization: float = 0.5, max_model_len: int = 4096, max_images: int = 4):
        if not vllm_available():
            raise ImportError("vLLM is not installed; install the 'gpu' extra on a CUDA machine or use TransformersEngine")
        from transformers import AutoProcessor
        from vllm import LLM

        self.processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        # Sleep mode is off: the loop frees the engine between stages instead.
        self.llm = LLM(
            model=model_dir,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            limit_mm_per_prompt={"image": max_images},
            enforce_eager=False,
            # the n samples of a question share its prompt's KV blocks: one prefill per question
            enable_prefix_caching=True,
        )

    def _prompt(self, r: GenerationRequest) -> dict:
        text = self.processor.apply_chat_template(build_messages(r.prompt, len(r.images), r.system), add_generation_prompt=True, tokenize=False)
        item = {"prompt": text}
        if r.images:
            imgs = [im.convert("RGB") for im in r.images]
            item["multi_modal_data"] = {"image": imgs if len(imgs) > 1 else imgs[0]}
        return item

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        from vllm import SamplingParams as VSampling

        if params.temperature <= 0 and params.n > 1:
            raise ValueError(f"n={params.n} samples need temperature > 0; greedy decoding gives one answer")
        sp = VSampling(
            n=params.n,
            temperature=max(params.temperature, 0.0),
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
            skip_special_tokens=True,
        )
        outs = self.llm.generate([self._prompt(r) for r in requests], sp, use_tqdm=False)
        return [[o.text.strip() for o in out.outputs] for out in outs]
