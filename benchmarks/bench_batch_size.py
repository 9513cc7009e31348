"""Training throughput in sequences per second at several batch sizes and thread counts, side by side.

    python benchmarks/bench_batch_size.py --batch_sizes 16,32,100 --amp [--threads 1,2] [--repeats 3]

Times `training.train_step` (the step the training scripts run: model, autocast, Adam) on the
SM-MNIST setting of the shipped model (dcgan 64x64, 1 channel, 5 + 10 frames), one model per batch
size and thread count (`torch.set_num_threads` before each step), interleaved so that a noisy
neighbour slows every configuration alike. The objective per
sequence is the same at every batch size; only the number of sequences per update changes.
"""
import argparse
import datetime
from types import SimpleNamespace

import torch
from common import count_flops, describe_device, time_interleaved

from svgvp import cpu_memory
from svgvp.models.svg import SVG, SVGConfig
from svgvp.training.loop import train_step


def make_step(batch_size, amp, device):
    torch.manual_seed(0)
    model = SVG(SVGConfig(model="dcgan", channels=1, z_dim=10)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.999))
    x = torch.rand(batch_size, 15, 1, 64, 64, device=device)
    args = SimpleNamespace(amp=amp, n_past=5, beta=1e-4)
    return lambda: train_step(model, opt, x, args)


def with_threads(n, step):
    def run():
        torch.set_num_threads(n)
        step()
    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch_sizes", default="16,32,100", help="comma-separated; ratios are against the first")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast, as train_svg_lp.py --amp")
    p.add_argument("--threads", default=None, help="comma-separated torch.set_num_threads values (default: torch's choice)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--keep_freed_memory", action=argparse.BooleanOptionalAction, default=True,
                   help="as the training scripts do on the CPU (cpu_memory.py)")
    args = p.parse_args()
    cpu_memory.keep_freed_memory_on(args.device, args.keep_freed_memory)
    dev = torch.device(args.device)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    threads = [int(n) for n in args.threads.split(",")] if args.threads else [torch.get_num_threads()]
    print(f"# bench_batch_size {datetime.date.today()} device={describe_device(dev)} amp={args.amp} "
          f"keep_freed_memory={args.keep_freed_memory} torch={torch.__version__} repeats={args.repeats}")
    configs = [(b, n) for b in sizes for n in threads]
    steps = [with_threads(n, make_step(b, args.amp, dev)) for b, n in configs]
    times = time_interleaved(steps, dev, args.repeats)
    base = sizes[0] / times[0]
    for (b, n), t, step in zip(configs, times, steps):
        rate = b / t
        tflops = count_flops(step) / t / 1e12
        print(f"batch {b}, {n} threads: {1 / t:.3f} it/s, {rate:.2f} sequences/s "
              f"(x{rate / base:.2f} vs the first row), {tflops:.3f} TFLOP/s", flush=True)


if __name__ == "__main__":
    main()
