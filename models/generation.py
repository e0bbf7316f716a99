"""Batched generation behind one inference-engine interface.

Inference-only stages of the loop (task generation, m-sample majority voting,
evaluation) call an `InferenceEngine`: a list of requests in, `n` completions
per request out. The default engine, `TransformersEngine`, runs a transformers
model with its own decode loop (CPU or GPU); `models.vllm_engine.VLLMEngine`
implements the same interface on GPU when vLLM is installed. Prompts are
built exactly as TRL builds them for GRPO (image block first, then the text),
so what the loop samples here matches what the trainer optimises.

    engine = TransformersEngine(model, processor, batch_size=32)
    outs = engine.generate([GenerationRequest(prompt="...", images=[img])],
                           SamplingParams(n=10, temperature=1.0, max_new_tokens=16))

`TransformersEngine` prefills each question once and shares that KV cache
among its n samples (the vLLM engine gets the same from prefix caching).
`HFGenerateEngine` is the plain `model.generate(num_return_sequences=n)`
implementation, which prefills every prompt n times; it is kept as the
reference that tests/models/test_models_sampling.py and `bench/sampling.py`
compare the default engine against.
"""

from __future__ import annotations

import inspect
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


def _check_params(params: SamplingParams) -> None:
    if params.temperature <= 0 and params.n > 1:
        raise ValueError(f"n={params.n} samples need temperature > 0; greedy decoding gives one answer")
    if params.n < 1 or params.max_new_tokens < 1:
        raise ValueError(f"need n >= 1 and max_new_tokens >= 1, got n={params.n}, max_new_tokens={params.max_new_tokens}")


class _EngineBase:
    """What both engines share: the model, the processor (left padding) and prompt encoding."""

    def __init__(self, model, processor, batch_size: int = 16, progress: bool = False):
        self.model = model
        self.processor = processor
        self.batch_size = batch_size  # questions per call; a call holds batch_size * n sequences
        self.progress = progress
        processor.tokenizer.padding_side = "left"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def eos_token_id(self) -> int:
        return self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")

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

    def _batches(self, requests: Sequence[GenerationRequest], params: SamplingParams):
        starts = range(0, len(requests), self.batch_size)
        for start in tqdm(starts, desc=f"generate x{params.n}", disable=not self.progress, unit="batch"):
            yield requests[start : start + self.batch_size]


class HFGenerateEngine(_EngineBase):
    """Reference engine: batched `model.generate` with left padding and `num_return_sequences=n`.

    `generate` expands the inputs n times before the prefill, so the prompt
    (vision tower included) runs n times per question. Kept as the baseline
    that tests and benchmarks compare `TransformersEngine` against.
    """

    name = "transformers-generate"

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        _check_params(params)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        greedy = params.temperature <= 0
        tok = self.processor.tokenizer
        gen_kwargs = dict(
            max_new_tokens=params.max_new_tokens,
            do_sample=not greedy,
            num_return_sequences=params.n,
            pad_token_id=tok.pad_token_id,
            eos_token_id=self.eos_token_id,
        )
        if not greedy:
            gen_kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        results: list[list[str]] = []
        for batch in self._batches(requests, params):
            inputs = self._encode(batch)
            out = self.model.generate(**inputs, **gen_kwargs)
            new_tokens = out[:, inputs["input_ids"].shape[1] :]
            texts = tok.batch_decode(new_tokens, skip_special_tokens=True)
            # generate() returns the n samples of each prompt consecutively.
            for i in range(len(batch)):
                results.append([t.strip() for t in texts[i * params.n : (i + 1) * params.n]])
        return results


def sample_next_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """One token per row from float32 logits: argmax at temperature 0, else temperature + nucleus sampling.

    The same arithmetic as transformers' TemperatureLogitsWarper and
    TopPLogitsWarper, then one draw from the resulting distribution, so answers
    come from the same distribution as `generate(do_sample=True, top_k=0)`
    (which draws with `torch.multinomial`; the random streams differ).
    """
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = warp_logits(logits, temperature, top_p).softmax(dim=-1)
    # Inverse-CDF draw (one uniform per row) instead of torch.multinomial: the same distribution, several times
    # cheaper on CPU for a few hundred rows over the vocabulary. float64 keeps the cumulative sum exact enough
    # that a token of probability 0 (outside the nucleus) is never picked.
    cdf = probs.double().cumsum(dim=-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=torch.float64, device=probs.device) * cdf[:, -1:]
    picked = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)
    # u rounding up to the total (probability ~2^-53) would land past the last token: take the mode instead
    return torch.where(probs.gather(1, picked[:, None]).squeeze(1) > 0, picked, probs.argmax(dim=-1))


def warp_logits(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Scores to sample from: logits / temperature, tokens outside the top-p nucleus set to -inf."""
    scores = logits / temperature
    if top_p < 1.0:
        sorted_scores, sorted_idx = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - top_p)
        remove_sorted[..., -1:] = False  # always keep the most likely token
        remove = remove_sorted.scatter(1, sorted_idx, remove_sorted)
        scores = scores.masked_fill(remove, float("-inf"))
    return scores


class TransformersEngine(_EngineBase):
    """One prefill per question, the KV cache shared by its n samples, all rows decoded together.

    For each batch of `batch_size` questions: one forward pass over the
    left-padded prompts (images through the vision tower once), logits kept for
    the last position only; then the KV cache, attention mask and next
    positions are repeated n times along the batch and all `batch_size * n`
    rows are decoded one token per step by a small loop (greedy, or
    temperature + top-p sampling, stop at `<|im_end|>` per row). Rows that have
    stopped are dropped from the cache once they are `compact_fraction` of the
    batch, so long-tail rows do not carry the finished ones.

    Behaviour callers can rely on:
    - greedy output equals `model.generate(do_sample=False)` (tests check it);
    - sampled answers follow `generate(do_sample=True, temperature, top_p,
      top_k=0)`'s distribution; a seeded call is deterministic for the same
      requests, batch_size and device (its own generator: the global torch RNG
      is neither read nor advanced; unseeded calls draw from the global RNG);
    - sampling is defined by `SamplingParams` alone: a checkpoint's
      generation_config (repetition penalty, top_k) is not applied, as in the
      vLLM engine;
    - memory: the cache holds batch_size * n rows of (prompt + max_new_tokens)
      positions, what `generate` holds too, without n copies of the prefill's
      activations.

    Positions follow Qwen2-VL's multimodal RoPE where the model has it
    (`get_rope_index`; Qwen2-VL, Qwen2.5-VL, Qwen3-VL): prompt positions come
    from the model, and reply token j of a row sits at that row's largest
    prompt position + 1 + j on all three axes, as in `generate`. Other models
    get 1-D positions from the attention mask.
    """

    name = "transformers"

    def __init__(self, model, processor, batch_size: int = 16, progress: bool = False, compact_fraction: float = 0.25):
        super().__init__(model, processor, batch_size=batch_size, progress=progress)
        self.compact_fraction = compact_fraction

    # -- positions -------------------------------------------------------------------------------------------------
    def _rope_index_fn(self):
        inner = getattr(self.model, "model", None)
        return getattr(inner, "get_rope_index", None)

    def _prompt_positions(self, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(position_ids for the prompt, next position per row): [3, B, L] with mrope, else [B, L]."""
        mask = inputs["attention_mask"]
        text_pos = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        rope_index = self._rope_index_fn()
        if rope_index is None:
            return text_pos, text_pos.max(dim=-1).values + 1
        if inputs.get("image_grid_thw") is None and inputs.get("video_grid_thw") is None:
            pos = text_pos.unsqueeze(0).expand(3, -1, -1)
        else:
            wanted = inspect.signature(rope_index).parameters
            kwargs = {k: inputs[k] for k in ("mm_token_type_ids", "image_grid_thw", "video_grid_thw", "second_per_grid_ts")
                      if k in wanted and inputs.get(k) is not None}
            pos, _ = rope_index(inputs["input_ids"], attention_mask=mask, **kwargs)
        # padded slots hold 0, so the max over the row is the largest real position
        return pos, pos.amax(dim=(0, 2)) + 1

    def _step_positions(self, next_pos: torch.Tensor, step: int, mrope: bool) -> torch.Tensor:
        pos = (next_pos + step).view(1, -1, 1) if mrope else (next_pos + step).view(-1, 1)
        return pos.expand(3, -1, -1) if mrope else pos

    # -- generation ------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        _check_params(params)
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(params.seed)
        tok = self.processor.tokenizer
        results: list[list[str]] = []
        for batch in self._batches(requests, params):
            tokens = self._generate_batch(self._encode(batch), params, generator)
            texts = tok.batch_decode(tokens, skip_special_tokens=True)
            for i in range(len(batch)):
                results.append([t.strip() for t in texts[i * params.n : (i + 1) * params.n]])
        return results

    def _generate_batch(self, inputs, params: SamplingParams, generator) -> torch.Tensor:
        """Token ids [B * n, max_new_tokens] (pad after each row's `<|im_end|>`), rows grouped by question."""
        n, device = params.n, self.device
        eos = self.eos_token_id
        pad = self.processor.tokenizer.pad_token_id
        pad = eos if pad is None else pad
        mrope = self._rope_index_fn() is not None
        position_ids, next_pos = self._prompt_positions(inputs)

        # Prefill: each prompt once, images included; logits for the last position only where the model can.
        last_only = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(self.model.forward).parameters else {}
        out = self.model(**inputs, position_ids=position_ids, use_cache=True, **last_only)
        cache = out.past_key_values
        logits = out.logits[:, -1].float()
        del out
        mask = inputs["attention_mask"]
        if n > 1:
            # Share the prompt: every sample of a question starts from the same cache rows.
            cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, dim=0)
            mask = mask.repeat_interleave(n, dim=0)
            next_pos = next_pos.repeat_interleave(n, dim=0)

        rows = logits.shape[0]
        result = torch.full((rows, params.max_new_tokens), pad, dtype=torch.long, device=device)
        row_ids = torch.arange(rows, device=device)  # which output row each live cache row writes
        done = torch.zeros(rows, dtype=torch.bool, device=device)
        for step in range(params.max_new_tokens):
            nxt = sample_next_tokens(logits, params.temperature, params.top_p, generator)
            nxt = nxt.masked_fill(done, pad)  # stopped rows still in the batch feed padding
            result[row_ids, step] = nxt
            done = done | (nxt == eos)
            if step == params.max_new_tokens - 1 or bool(done.all()):
                break
            n_done = int(done.sum())
            if n_done and n_done >= self.compact_fraction * done.numel():
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                mask, next_pos, row_ids, nxt, done = mask[keep], next_pos[keep], row_ids[keep], nxt[keep], done[keep]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            out = self.model(
                input_ids=nxt.unsqueeze(1),
                attention_mask=mask,
                position_ids=self._step_positions(next_pos, step, mrope),
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            logits = out.logits[:, -1].float()
            del out
        return result
