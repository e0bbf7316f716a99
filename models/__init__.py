"""zeroforge.models: the VLM side of the loop, as a plain library.

Building the embedded tiny Qwen2.5-VL, loading any local Hugging Face VLM
directory, batched generation behind an inference-engine interface, and the
supervised warm start. No dagster imports here: everything runs under
`accelerate launch`, in a notebook or in a unit test.
"""

from models.compat import ensure_torchvision

# transformers' Qwen-VL processors import torchvision; make that import work
# on the CPU install before anything below pulls it in.
ensure_torchvision()
