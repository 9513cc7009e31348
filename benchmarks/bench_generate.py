"""Generation speed with nsample samples: ours (samples batched) vs a per-sample loop (2018 structure).

    python benchmarks/bench_generate.py [--device cuda] [--batch_size 2] [--nsample 100] [--channels_last] [--amp]

SM-MNIST settings (dcgan, 5 -> 20 frames), eval-mode batch norm, same weights and inputs. Besides the
ratio it prints each side's achieved GFLOP/s (analytic count from torch's FLOP counter) next to a
large float32 matmul on the same device: when ours is close to that, the device is compute-bound and
no restructuring of the same math can make sampling much faster. On a GPU it also prints how many
operations one call launches and the share of the time the GPU is busy (a busy share well below 100%
means the rollout is launch-bound, and replaying it as a CUDA graph would pay).
"""
import argparse
import copy
import datetime

import torch
from common import count_flops, describe_device, matmul_tflops, profile_gpu, time_interleaved

from svgvp.generate import rollout_precision
from svgvp.models.svg import SVG, SVGConfig
from svgvp.utils import cpu_has_bfloat16


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch_size", type=int, default=2, help="test sequences per call")
    p.add_argument("--nsample", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--channels_last", action="store_true", help="channels-last weights for ours (measured: no gain on the CPU, so off in generate_svg_lp.py)")
    p.add_argument("--amp", action="store_true", help="also time ours under bfloat16 autocast (generate_svg_lp.py --amp)")
    args = p.parse_args()
    dev = torch.device(args.device)
    if args.amp and dev.type == "cpu" and not cpu_has_bfloat16():
        p.error("--amp: this CPU has no bfloat16 units (AVX512-BF16 or AMX), so bfloat16 is emulated and slow")
    torch.manual_seed(0)
    ref_model = SVG(SVGConfig()).to(dev).eval()
    model = copy.deepcopy(ref_model)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = torch.rand(args.batch_size, 25, 1, 64, 64, device=dev)

    def ours():
        model.sample(x, 5, 20, nsample=args.nsample)

    def per_sample_loop():
        for _ in range(args.nsample):
            ref_model.sample(x, 5, 20, nsample=1)

    def ours_amp():
        with rollout_precision(dev, amp=True):
            ours()

    t_ours, t_loop, *t_amp = time_interleaved([ours, per_sample_loop] + [ours_amp] * args.amp, dev, args.repeats)
    # printed as soon as measured, so that a deadline cutting the slower lines short keeps these
    print(f"# bench_generate {datetime.date.today()} device={describe_device(dev)} batch={args.batch_size} "
          f"nsample={args.nsample} channels_last={args.channels_last} torch={torch.__version__}")
    print(f"ours {args.batch_size / t_ours:.3f} sequences/s, per-sample loop {args.batch_size / t_loop:.3f} "
          f"sequences/s, speed-up x{t_loop / t_ours:.2f}", flush=True)
    if t_amp:
        print(f"ours under bfloat16 autocast (--amp) {args.batch_size / t_amp[0]:.3f} sequences/s, x{t_ours / t_amp[0]:.2f} "
              f"over ours in float32; bfloat16 matmul on this device {1000 * matmul_tflops(dev, torch.bfloat16):.0f} "
              f"GFLOP/s", flush=True)
    if dev.type == "cuda":  # launch-bound or not: whether one CUDA graph per rollout could pay
        ops, busy = profile_gpu(ours, dev, steps=2)
        print(f"GPU: ours {ops:.0f} operations per call, busy {100 * busy:.0f}% of the wall time", flush=True)
    f_ours, f_loop = count_flops(ours), count_flops(per_sample_loop)
    print(f"work: ours {f_ours / 1e9:.0f} GFLOP at {f_ours / t_ours / 1e9:.0f} GFLOP/s, per-sample loop "
          f"{f_loop / 1e9:.0f} GFLOP at {f_loop / t_loop / 1e9:.0f} GFLOP/s; float32 matmul on this device "
          f"{1000 * matmul_tflops(dev):.0f} GFLOP/s")


if __name__ == "__main__":
    main()
