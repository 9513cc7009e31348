"""Fréchet module speed, measured in one run.

    python benchmarks/bench_frechet.py [--model_path pretrained_models/svglp_smmnist2.pth] [--device cpu]

1. Distance from statistics: ours (nuclear norm of B1^T B2 with Cholesky factors B B^T = S) vs the
   scipy.linalg.sqrtm method pytorch-fid uses, at d = 128 and d = 2048 (target at 2048: at least 4x).
2. Feature extraction: images per second with the encoder cached vs loaded from disk per call.
"""
import argparse
import datetime
import os

import numpy as np
import scipy.linalg
import torch
from common import ROOT, describe_device, time_interleaved

from svgvp.metrics import frechet as fd


def sqrtm_distance(mu1, s1, mu2, s2):
    """The pytorch-fid formula: sqrtm of the product, real part, trace."""
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    return ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model_path", default=os.path.join(ROOT, "pretrained_models", "svglp_smmnist2.pth"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=200)
    args = p.parse_args()
    print(f"# bench_frechet {datetime.date.today()} device={describe_device(torch.device(args.device))}")
    rng = np.random.default_rng(0)
    for d in (128, 2048):
        stats = []
        for _ in range(2):
            f = rng.standard_normal((2 * d, d))
            stats += [f.mean(0), np.cov(f, rowvar=False)]
        t_ours, t_ref = time_interleaved([lambda: fd.frechet_distance_from_statistics(*stats),
                                          lambda: sqrtm_distance(*stats)], "cpu", 3)
        diff = abs(fd.frechet_distance_from_statistics(*stats) - sqrtm_distance(*stats))
        print(f"d={d}: ours {t_ours * 1e3:.1f} ms, scipy sqrtm {t_ref * 1e3:.1f} ms, speed-up x{t_ref / t_ours:.2f}, "
              f"|difference| {diff:.2e}")

    images = torch.rand(args.images, 1, 64, 64)

    def cached():
        fd.frechet_distance(images, images, model_path=args.model_path, device=args.device)

    def reload():
        fd.clear_model_cache()
        fd.frechet_distance(images, images, model_path=args.model_path, device=args.device)

    t_cached, t_reload = time_interleaved([cached, reload], args.device, 3)
    n = 2 * args.images
    print(f"features: cached model {n / t_cached:.0f} images/s, loaded per call {n / t_reload:.0f} images/s, "
          f"speed-up x{t_reload / t_cached:.2f}")


if __name__ == "__main__":
    main()
