"""A byte-level BPE tokenizer trained locally, with Qwen's special tokens and chat template.

The embedded model cannot download Qwen's 151k-token vocabulary, and would not
want it: a tiny model spends most of its parameters on embeddings. So the
tokenizer is trained on the text the procedural world and the recipes' prompt
templates can produce, then given exactly the special tokens and chat template
Qwen2.5-VL uses, so the processor, TRL and vLLM treat it like the real thing.

    from models.tokenizer import train_tokenizer
    tok = train_tokenizer(corpus_lines, vocab_size=1024)
"""

from __future__ import annotations

import models.compat  # noqa: F401  (the torchvision fallback, before transformers imports torchvision)

# isort: split

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

# Order matters only for readability; ids are assigned after the learned
# vocabulary. These are the tokens Qwen2.5-VL's processor and template use.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2.5-VL's chat template, verbatim in behaviour: a default system turn,
# image/video placeholders expanded later by the processor.
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _with_bare_words(lines: Iterable[str]) -> list[str]:
    """The corpus plus every word on its own line.

    Answers follow `assistant\\n`, so a byte-level BPE sees them without the
    leading-space marker; without bare words in training, every answer would
    be spelled out byte by byte.
    """
    lines = [line for line in lines if line]
    words = sorted({w for line in lines for w in line.split()})
    return lines + words + ["system", "user", "assistant", "You are a helpful assistant."]


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `corpus` and dress it as a Qwen2 tokenizer."""
    lines = _with_bare_words(corpus)
    if not lines:
        raise ValueError("train_tokenizer needs a non-empty corpus; got no text lines")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(QWEN_SPECIAL_TOKENS),
        min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(lines, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        padding_side="left",
        model_max_length=4096,
        additional_special_tokens=QWEN_SPECIAL_TOKENS,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL_TOKENS})
    return tok
