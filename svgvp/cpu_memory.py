"""Keep freed memory inside the process on Linux (glibc), so that CPU training steps reuse it.

glibc's malloc serves every request above its mmap threshold (at most 32 MB) with a fresh mmap and
unmaps it again on free. One batch-100 SVG step on the CPU allocates and frees gigabytes of such
activations, so the kernel zero-fills every page again on the next step: 3.3 million page faults
and a third of the step's CPU time on the 2-core development machine
(`benchmarks/bench_cpu_memory.py` measures it side by side). With mmap-backed allocations and
heap trimming switched off, the heap keeps its high-water mark and the next step reuses it. The
cost is resident memory: freed blocks stay in the heap, which can fragment, so the measured peak of
that step rose from 4.3 to 6.2 GB; it is returned to the OS when the process ends.
"""
import ctypes
import sys

import torch

# from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_freed_memory():
    """Tell glibc's malloc to keep freed memory for reuse; returns True when it was applied.

    A no-op (False) where the C library is not glibc (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # mallopt returns 1 on success; -1 as the trim threshold disables trimming (man 3 mallopt)
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, -1) == 1


def keep_freed_memory_on(device, enabled=True):
    """keep_freed_memory() when `enabled` and `device` is the CPU; GPU runs keep malloc's defaults."""
    return enabled and torch.device(device).type == "cpu" and keep_freed_memory()
