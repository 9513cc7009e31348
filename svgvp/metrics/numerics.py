"""Full float32 inside feature extraction, whatever the caller's global TF32 settings are.

PyTorch lets cuDNN convolutions use TF32 by default, and a caller's own code may turn TF32 on for
matrix products too. On an H200 (as reported when this was found; not one of our benchmarks) that
moved the I3D logits by 2.3e-3 relative to the CPU's (2.2e-6 with TF32 off) and an FVD of 256
against 256 videos from 365.497 to 365.394. A metric must not
depend on such a global flag: the feature extractors (SVG encoder, I3D) run inside
``full_float32()``, which turns TF32 off for the call and restores the caller's settings after it.
"""
import threading
from contextlib import contextmanager

import torch

_LOCK = threading.Lock()
_STATE = {"depth": 0, "saved": None}  # nested or concurrent metric calls: the first saves, the last restores


@contextmanager
def full_float32():
    """TF32 off for CUDA matrix products and cuDNN convolutions inside the block; the caller's
    settings are restored when the last concurrent block ends."""
    with _LOCK:
        if _STATE["depth"] == 0:
            _STATE["saved"] = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        _STATE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = _STATE["saved"]
