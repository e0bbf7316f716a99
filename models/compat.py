"""Import-time compatibility shims for the CPU install.

PyPI ships torchvision 0.28 (the release that matches torch 2.13) only as a
CUDA build. Next to the local CPU build of torch its compiled extension
(`torchvision/_C.so`) fails to load, and `import torchvision` then dies in
`_meta_registrations.py` with "operator torchvision::nms does not exist".
transformers' Qwen-VL processors and open_clip both import torchvision, so it
cannot be left out.

`ensure_torchvision()` checks whether the compiled extension loads. Only if it
does not, it defines the two operators torchvision registers fake kernels for
at import time (`nms`, `qnms`) with a pure-torch CPU implementation. On a
machine where the extension loads (any CUDA install) it changes nothing.
Transforms, models and processors then work; the C++ kernels of
`torchvision.ops` (roi_align, deform_conv2d, ...) and the `torchvision.io`
codecs stay unavailable: decode images with PIL.

Importing this module applies it: every zeroforge module that imports
transformers or open_clip imports `models.compat` first.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_STATE: dict[str, object] = {"checked": False, "fallback": False, "lib": None}


def _extension_loads() -> bool:
    """True when torchvision's compiled `_C` extension loads against this torch."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True  # torchvision not installed: nothing to patch
    candidates = sorted(Path(spec.origin).parent.glob("_C*.so")) + sorted(
        Path(spec.origin).parent.glob("_C*.pyd")
    )
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, RuntimeError, ImportError):
        return False
    return True


def _nms(dets, scores, iou_threshold: float):
    """Greedy non-maximum suppression on (x1, y1, x2, y2) boxes, pure torch."""
    import torch

    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep: list[int] = []
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool, device=dets.device)
    for idx in order.tolist():
        if suppressed[idx]:
            continue
        keep.append(idx)
        xx1 = torch.maximum(x1[idx], x1)
        yy1 = torch.maximum(y1[idx], y1)
        xx2 = torch.minimum(x2[idx], x2)
        yy2 = torch.minimum(y2[idx], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[idx] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=dets.device)


def ensure_torchvision() -> bool:
    """Make `import torchvision` work; return True when the CPU fallback is active.

    Idempotent and cheap after the first call. Must run before torchvision is
    first imported; if it was already imported successfully, nothing is done.
    """
    if _STATE["checked"]:
        return bool(_STATE["fallback"])
    _STATE["checked"] = True
    if "torchvision" in sys.modules or _extension_loads():
        return False
    import torch

    # Keep a reference: a torch.library.Library deregisters its ops when
    # garbage-collected.
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms, "CPU")
    lib.impl("qnms", _nms, "CPU")
    _STATE["lib"] = lib
    _STATE["fallback"] = True
    return True


def torchvision_fallback_active() -> bool:
    """Whether `ensure_torchvision()` had to install the pure-torch fallback."""
    return bool(_STATE["fallback"])


ensure_torchvision()  # on import: this module is imported before transformers / open_clip
