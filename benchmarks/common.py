"""Timing helpers for the benchmarks: ours and the reference run side by side, in one process."""
import os
import resource
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def sync(device):
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the device we were given, not GPU 0


def time_interleaved(fns, device, repeats, warmup=1):
    """Run each fn in turn, `repeats` rounds (after warm-up); return the median seconds per fn.

    Interleaving means a noisy neighbour slows both sides alike.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    sync(device)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[k].append(time.perf_counter() - t0)
    return [sorted(t)[len(t) // 2] for t in times]


def count_flops(fn):
    """Analytic FLOPs of one call of fn (torch's FLOP counter)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_tflops(device, dtype=torch.float32, n=4096, repeats=3):
    """TFLOP/s of an n x n matmul in dtype on random data: this device's practical ceiling, measured
    in the same run as the benchmark so that both see the same machine load."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n ** 3 / time_interleaved([lambda: a @ b], device, repeats)[0] / 1e12


def profile_gpu(fn, device, steps=5):
    """(GPU operations per call, share of the wall time the GPU was busy) over `steps` calls of fn.

    Kernels, copies and fills as CUPTI reports them (also those replayed from a CUDA graph); busy
    time is the union of their intervals, so that overlapping work is not counted twice.
    """
    from torch.profiler import DeviceType, ProfilerActivity, profile
    sync(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter_ns()
        for _ in range(steps):
            fn()
        sync(device)
        wall = time.perf_counter_ns() - t0
    spans = sorted((e.start_ns(), e.start_ns() + e.duration_ns()) for e in prof.profiler.kineto_results.events()
                   if e.device_type() == DeviceType.CUDA)
    busy, end = 0, None
    for start, stop in spans:
        if end is None or start > end:
            busy += stop - start
            end = stop
        elif stop > end:
            busy += stop - end
            end = stop
    return len(spans) / steps, busy / wall


def peak_memory_mb(device):
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS


def describe_device(device):
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    return f"CPU ({torch.get_num_threads()} threads)"
