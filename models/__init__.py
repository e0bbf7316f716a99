"""zeroforge.models: the VLM side of the loop, as a plain library.

Building the embedded tiny Qwen2.5-VL, loading any local Hugging Face VLM
directory, batched generation behind an inference-engine interface, the
supervised warm start, GRPO through TRL, and role checkpoints on disk. No
dagster imports here: everything runs under `accelerate launch`, in a
notebook or in a unit test. Importing the package is cheap (no torch): the
modules that import transformers apply the torchvision fallback first
(`models.compat`), so `models.formats` can be used by the CLI's help text.
"""
