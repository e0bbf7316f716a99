"""Batched generation behind one inference-engine interface.

Inference-only stages of the loop (task generation, m-sample majority voting,
evaluation) call an `InferenceEngine`: a list of requests in, `n` completions
per request out. The default engine batches prompts through transformers'
`generate` (CPU or GPU); `models.vllm_engine.VLLMEngine` implements the same
interface on GPU when vLLM is installed. Prompts are built exactly as TRL
builds them for GRPO (image block first, then the text), so what the loop
samples here matches what the trainer optimises.

    engine = TransformersEngine(model, processor, batch_size=32)
    outs = engine.generate([GenerationRequest(prompt="...", images=[img])],
                           SamplingParams(n=10, temperature=1.0, max_new_tokens=16))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from PIL import Image
from tqdm.auto import tqdm


@dataclass
class GenerationRequest:
    """One prompt: user text plus zero or more images (shown before the text)."""

    prompt: str
    images: list[Image.Image] = field(default_factory=list)
    system: str | None = None


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 32
    seed: int | None = None


def build_messages(prompt: str, n_images: int, system: str | None = None) -> list[dict]:
    """Conversational prompt in TRL's layout: images first, then the text, in one user turn."""
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": prompt}]
    messages = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    return messages + [{"role": "user", "content": content}]


@runtime_checkable
class InferenceEngine(Protocol):
    """Anything that turns requests into n completions each (text only, special tokens stripped)."""

    name: str

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[list[str]]: ...


class TransformersEngine:
    """Batched `model.generate` with left padding and `num_return_sequences=n`."""

    name = "transformers"

    def __init__(self, model, processor, batch_size: int = 16, progress: bool = False):
        self.model = model
        self.processor = processor
        self.batch_size = batch_size
        self.progress = progress
        processor.tokenizer.padding_side = "left"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode(self, batch: Sequence[GenerationRequest]):
        texts = [
            self.processor.apply_chat_template(
                build_messages(r.prompt, len(r.images), r.system), add_generation_prompt=True, tokenize=False
            )
            for r in batch
        ]
        images = [img.convert("RGB") for r in batch for img in r.images]
        inputs = self.processor(text=texts, images=images or None, return_tensors="pt", padding=True)
        return inputs.to(self.device)

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        if params.seed is not None:
            torch.manual_seed(params.seed)
        greedy = params.temperature <= 0
        if greedy and params.n > 1:
            raise ValueError(f"n={params.n} samples need temperature > 0; greedy decoding gives one answer")
        tok = self.processor.tokenizer
        gen_kwargs = dict(
            max_new_tokens=params.max_new_tokens,
            do_sample=not greedy,
            num_return_sequences=params.n,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        )
        if not greedy:
            gen_kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        results: list[list[str]] = []
        starts = range(0, len(requests), self.batch_size)
        for start in tqdm(starts, desc=f"generate x{params.n}", disable=not self.progress, unit="batch"):
            batch = requests[start : start + self.batch_size]
            inputs = self._encode(batch)
            out = self.model.generate(**inputs, **gen_kwargs)
            new_tokens = out[:, inputs["input_ids"].shape[1] :]
            texts = tok.batch_decode(new_tokens, skip_special_tokens=True)
            # generate() returns the n samples of each prompt consecutively.
            for i in range(len(batch)):
                results.append([t.strip() for t in texts[i * params.n : (i + 1) * params.n]])
        return results
