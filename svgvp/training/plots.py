"""Figures of a run: the per-epoch sample plots, training losses per epoch and evaluation metrics per time
step (PNG and GIF files, no display)."""
import json
import os

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from svgvp.metrics.evaluation import lowest_error_sample  # noqa: E402
from svgvp.utils import image_grid, save_gif, save_png  # noqa: E402

PLOT_SAMPLES = 20    # SVG-LP: samples per sequence in sample_<epoch>.png, the best and 4 random shown (2018: 20)
FP_PLOT_SAMPLES = 5  # SVG-FP: samples shown per sequence (2018 train_svg_fp.py: 5, no best-of)


def plot_losses(metrics_path, out_path):
    """losses.png of a run folder: the 2018 console values of mse and kld per epoch."""
    rows = []
    with open(metrics_path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if not rows:
        return
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key in zip(axes, ("mse", "kld")):
        ax.plot(epochs, [r[key] for r in rows], "o-" if len(rows) < 30 else "-")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{key} per frame")
        ax.set_title(key)
    fig.tight_layout()
    fig.savefig(out_path, dpi=90)
    plt.close(fig)


def plot_metrics(path, summary_rows, n_past, train_horizon, ssim_variant):
    """metrics_vs_time.png of an evaluation: best-of-N SSIM, PSNR (and LPIPS when computed) per time step,
    with 95% intervals."""
    t = [r["t"] for r in summary_rows]
    panels = [("ssim_best", f"SSIM ({ssim_variant})"), ("psnr_best", "PSNR (dB)")]
    if "lpips_best_mean" in summary_rows[0]:
        panels.append(("lpips_best", "LPIPS (lower is better)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (key, name) in zip(axes, panels):
        m = np.array([r[f"{key}_mean"] for r in summary_rows])
        ci = [r[f"{key}_ci95"] for r in summary_rows]
        ax.plot(t, m, label="best of N")
        if None not in ci:  # no band where the interval is undefined (one sequence)
            ax.fill_between(t, m - np.array(ci), m + np.array(ci), alpha=0.3)
        ax.axvline(n_past - 0.5, color="green", ls="--", label="end of conditioning")
        if train_horizon is not None:
            ax.axvline(train_horizon - 0.5, color="gray", ls=":", label="training horizon")
        ax.set_xlabel("time step")
        ax.set_ylabel(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(model, x, n_past, n_rec, epoch, folder):
    """The 2018 per-epoch plots, written into folder (a run's gen/): ground truth and, for SVG-LP, the best of 20 samples and 4 random ones
    (2018 train_svg_lp.py), for SVG-FP 5 samples (2018 train_svg_fp.py); and reconstructions of the first
    n_rec (= n_past + n_future) frames."""
    n_eval = x.shape[1]
    learned_prior = model.config.learned_prior
    samples = model.sample(x, n_past, n_eval - n_past, nsample=PLOT_SAMPLES if learned_prior else FP_PLOT_SAMPLES)
    if learned_prior:                                                                # samples: (R, S, T, C, H, W)
        best = lowest_error_sample(samples, x)
        rand = torch.randint(PLOT_SAMPLES, (x.shape[0], 4))
    rows, gif_frames = [], [[] for _ in range(n_eval)]
    for r in range(x.shape[0]):
        picks = ([samples[r, best[r]]] + [samples[r, k] for k in rand[r]]) if learned_prior else list(samples[r])
        rows.append(list(x[r]))
        rows.extend(list(p) for p in picks)
        for t in range(n_eval):
            gif_frames[t].append([x[r, t]] + [p[t] for p in picks])
    sample_grid = image_grid(rows)
    save_png(os.path.join(folder, f"sample_{epoch}.png"), sample_grid)
    save_gif(os.path.join(folder, f"sample_{epoch}.gif"), [image_grid(f) for f in gif_frames])

    with torch.no_grad():  # model.sample is no_grad already; the reconstruction needs no graph either
        x_pred = model.teacher_forced(x[:, :n_rec], n_past)[0]
    rec = [list(x[r, :n_past]) + list(x_pred[r, n_past - 1:]) for r in range(x.shape[0])]
    rec_grid = image_grid(rec)
    save_png(os.path.join(folder, f"rec_{epoch}.png"), rec_grid)
    return sample_grid, rec_grid
