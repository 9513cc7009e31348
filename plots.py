"""Figures of a run: training losses per epoch and evaluation metrics per time step (PNG, no display)."""
import json

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
    """metrics_vs_time.png of an evaluation: best-of-N SSIM and PSNR per time step with 95% intervals."""
    t = [r["t"] for r in summary_rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, name in ((axes[0], "ssim_best", f"SSIM ({ssim_variant})"), (axes[1], "psnr_best", "PSNR (dB)")):
        m = np.array([r[f"{key}_mean"] for r in summary_rows])
        ci = np.array([r[f"{key}_ci95"] for r in summary_rows])
        ax.plot(t, m, label="best of N")
        ax.fill_between(t, m - ci, m + ci, alpha=0.3)
        ax.axvline(n_past - 0.5, color="green", ls="--", label="end of conditioning")
        if train_horizon is not None:
            ax.axvline(train_horizon - 0.5, color="gray", ls=":", label="training horizon")
        ax.set_xlabel("time step")
        ax.set_ylabel(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
