"""Peak memory of generation (generate_svg_lp.py's rollouts) per paper setting, and the --rollout_batch
that fits a 24 GB and an 80 GB GPU.

    python benchmarks/bench_memory.py [--rows 4,8]

For each setting, one rollout of SVG.sample runs in a fresh process with R rows (1 sequence x R
samples, eval mode, 2 predicted frames) and reports its peak resident memory; the growth per row
between the two R values is the per-step activation memory of one rollout row. A full evaluation
chunk of --rollout_batch rows then needs about
    rows x (activation per row + (n_past + n_future) frames of output)
plus the model, the conditioning frames' features (one row per sequence) and the batch's kept
samples. CPU resident memory stands in for GPU memory (the same tensors, without cuDNN workspaces
or allocator rounding), so the GPU figures are estimates.
"""
import argparse
import json
import os
import subprocess
import sys

# name: (model, width, channels, g_dim, z_dim, n_past, n_future, learned prior)
SETTINGS = {
    "smmnist dcgan64 (5->20)": ("dcgan", 64, 1, 128, 10, 5, 20, True),
    "bair vgg64 (2->28)": ("vgg", 64, 3, 128, 64, 2, 28, True),
    "kth vgg64 (10->30)": ("vgg", 64, 1, 128, 24, 10, 30, False),
    "kth dcgan128 (10->30)": ("dcgan", 128, 1, 128, 24, 10, 30, False),
    "kth vgg128 (10->30)": ("vgg", 128, 1, 128, 24, 10, 30, False),
}

CHILD = """
import json, resource, sys, torch
sys.path.insert(0, {root!r})
from svgvp.models.svg import SVG, SVGConfig
model, width, channels, g_dim, z_dim, n_past, rows, lp = {args!r}
torch.manual_seed(0)
m = SVG(SVGConfig(model=model, image_width=width, channels=channels, g_dim=g_dim, z_dim=z_dim, learned_prior=lp)).eval()
x = torch.rand(1, n_past + 2, channels, width, width)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
m.sample(x, n_past, 2, nsample=rows)
print(json.dumps({{"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "base_kb": base,
                  "model_mb": sum(p.numel() for p in m.parameters()) * 4 / 2 ** 20}}))
"""


def peak_mb(setting, rows):
    model, width, channels, g_dim, z_dim, n_past, _, lp = setting
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = CHILD.format(root=root, args=(model, width, channels, g_dim, z_dim, n_past, rows, lp))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["peak_kb"] / 1024, r["base_kb"] / 1024, r["model_mb"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="4,12", help="two rollout sizes to measure")
    p.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated names of SETTINGS")
    args = p.parse_args()
    r1, r2 = (int(v) for v in args.rows.split(","))
    print(f"{'setting':24s} {'MB/row act.':>11s} {'MB/row out':>10s} {'model MB':>8s} "
          f"{'rows @24GB':>10s} {'rows @80GB':>10s}")
    for name in args.settings.split(","):
        s = SETTINGS[name]
        (p1, base, model_mb), (p2, _, _) = peak_mb(s, r1), peak_mb(s, r2)
        per_row = max((p2 - p1) / (r2 - r1), 0.0)
        _, width, channels, *_rest = s
        out_row = (s[5] + s[6]) * channels * width * width * 4 / 2 ** 20   # the rollout's output frames
        conditioning = max(p1 - per_row * r1 - base, 0.0)
        fixed = model_mb + conditioning + 1024                           # + 1 GB for the CUDA context
        fits = [int((gb * 1024 - fixed) / (per_row + 2 * out_row)) for gb in (24, 80)]  # output + kept copies
        print(f"{name:24s} {per_row:11.1f} {out_row:10.1f} {model_mb:8.0f} {fits[0]:10d} {fits[1]:10d}",
              flush=True)


if __name__ == "__main__":
    main()
