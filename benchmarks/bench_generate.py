"""Generation speed with nsample samples: ours (samples batched) vs a per-sample loop (2018 structure).

    python benchmarks/bench_generate.py [--device cuda] [--batch_size 4] [--nsample 100]

SM-MNIST settings (dcgan, 5 -> 20 frames), eval-mode batch norm, same weights and inputs.
"""
import argparse
import datetime

import torch
from common import describe_device, time_interleaved

from models.svg import SVG, SVGConfig


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch_size", type=int, default=2, help="test sequences per call")
    p.add_argument("--nsample", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = SVG(SVGConfig()).to(dev).eval()
    x = torch.rand(args.batch_size, 25, 1, 64, 64, device=dev)

    def ours():
        model.sample(x, 5, 20, nsample=args.nsample)

    def per_sample_loop():
        for _ in range(args.nsample):
            model.sample(x, 5, 20, nsample=1)

    t_ours, t_loop = time_interleaved([ours, per_sample_loop], dev, args.repeats)
    print(f"# bench_generate {datetime.date.today()} device={describe_device(dev)} batch={args.batch_size} "
          f"nsample={args.nsample} torch={torch.__version__}")
    print(f"ours {args.batch_size / t_ours:.3f} sequences/s, per-sample loop {args.batch_size / t_loop:.3f} "
          f"sequences/s, speed-up x{t_loop / t_ours:.2f}")


if __name__ == "__main__":
    main()
