"""The best-of-N evaluation protocol in one place: presets, score samples, choose the best one, summarise.

Every caller (generate_svg_lp.py, the per-epoch training plots, pretrained_models/check_quality.py)
chooses "the best sample" through these functions, so the rule cannot drift between them:
- evaluation (2018 generate scripts): per metric, the sample with the best mean over the predicted
  frames; ``psnr_2018`` is the PSNR of the best-SSIM sample (the 2018 GIFs' "best");
- the 2018 training plots: the sample with the smallest squared error over the whole sequence.
"""
import math

import torch

from svgvp.metrics.frames import mean_confidence, psnr, ssim

# metrics.csv columns, in order; the LPIPS ones when LPIPS is computed (--lpips, or --protocol srvp)
METRICS = ("ssim_best", "psnr_best", "psnr_2018", "ssim_posterior", "psnr_posterior")
LPIPS_METRICS = ("lpips_best", "lpips_posterior")
LOWER_IS_BETTER = ("lpips",)  # per-sample scores whose best sample is the one with the lowest mean

# Evaluation presets, as data. "flags": generate_svg_lp.py defaults the preset sets (explicit flags win);
# "settings": per dataset (n_past, n_future, test sequences N).
PAPER_SETTINGS = {"smmnist": (5, 20, 256), "kth": (10, 30, 256), "bair": (2, 28, 256)}
PROTOCOLS = {
    # ours: the paper's horizons, standard SSIM, eval-mode batch norm, 256 sequences
    "ours": {"flags": {}, "settings": PAPER_SETTINGS},
    # 2018: every choice of the 2018 generate_svg_lp.py / generate_svg_fp.py (bn_train_mode None: train mode for
    # LP, whose 2018 script left batch norm in train mode; eval mode for FP, whose script called .eval())
    "2018": {"flags": {"ssim": "2018", "bn_train_mode": None, "n_past": 2, "n_future": 28}, "settings": PAPER_SETTINGS},
    # srvp: the tables of SRVP (Franceschi et al. 2020) and SLAMP (Akan et al. 2021): 100 samples, the best per
    # sequence chosen per metric on its mean over the predicted frames, standard SSIM, PSNR, LPIPS (AlexNet v0.1),
    # FVD
    "srvp": {"flags": {"ssim": "standard", "bn_train_mode": False, "nsample": 100, "no_fvd": False, "lpips": True},
             "settings": {"smmnist": (5, 20, 5000), "kth": (10, 30, 1000), "bair": (2, 28, 256)}},
}


def protocol_setting(protocol, dataset, n_past=None, n_future=None, n=None, fallback=(5, 10)):
    """(n_past, n_future, N) of a protocol on a dataset; explicit values win. ``fallback``: the horizons
    of a dataset no preset knows (the model's training horizons)."""
    d_past, d_future, d_n = PROTOCOLS[protocol]["settings"].get(dataset, (*fallback, 256))
    return (d_past if n_past is None else n_past, d_future if n_future is None else n_future,
            d_n if n is None else n)


def score_samples(samples, truth, ssim_variant="standard", lpips=None):
    """Per-sample, per-frame scores {"ssim", "psnr"[, "lpips"]}, each (B, S, T): samples (B, S, T, C, H, W)
    against truth (B, T, C, H, W). ``lpips``: an ``LPIPSCalculator`` to add LPIPS."""
    target = truth[:, None].expand_as(samples)
    scores = {"ssim": ssim(samples, target, ssim_variant), "psnr": psnr(samples, target)}
    if lpips is not None:
        scores["lpips"] = lpips.distances_to_reference(samples, truth)
    return scores


def best_sample(scores, lower_is_better=False):
    """(index (B,), its mean score (B,)) of the sample with the best mean over the frames of scores (B, S, T):
    the highest, or the lowest when ``lower_is_better``."""
    mean = scores.mean(2)
    score, index = mean.min(1) if lower_is_better else mean.max(1)
    return index, score


def of_sample(scores, index):
    """scores (B, S, T) of one sample per sequence -> (B, T)."""
    return scores[torch.arange(scores.shape[0], device=scores.device), index.to(scores.device)]


def best_of_n(scores):
    """The per-frame metrics of the best sample of each sequence, chosen per metric: {"<metric>_best": (B, T)},
    and "psnr_2018", the PSNR of the best-SSIM sample (the 2018 GIFs' "best")."""
    best = {name: best_sample(values, name in LOWER_IS_BETTER)[0] for name, values in scores.items()}
    out = {f"{name}_best": of_sample(values, best[name]) for name, values in scores.items()}
    out["psnr_2018"] = of_sample(scores["psnr"], best["ssim"])
    return out


def lowest_error_sample(samples, x):
    """Index (B,) of the sample with the smallest summed squared error to x over all frames (2018 training plot)."""
    return ((samples - x[:, None]) ** 2).flatten(2).sum(2).argmin(1)


def table(metrics):
    """The tables' shape: per metric, the mean over the predicted frames of each sequence, then its mean and
    95% interval over sequences: {metric: {"mean", "ci95"}}; ci95 is None (undefined) for one sequence."""
    out = {}
    for name, values in metrics.items():                       # (N, n_future)
        mean, ci = mean_confidence(values.double().mean(1))
        out[name] = {"mean": mean.item(), "ci95": _defined(ci.item())}
    return out


def _defined(value):
    """None for an undefined (NaN) interval, which JSON and CSV then show as empty rather than 'NaN'."""
    return None if math.isnan(value) else value


def summarise(metrics, n_past):
    """metrics_summary.csv rows: per time step, each metric's mean and 95% interval over sequences."""
    stats = {k: mean_confidence(v) for k, v in metrics.items()}               # each: ((n_future,), (n_future,))
    n_future = next(iter(metrics.values())).shape[1]
    return [{"t": n_past + t, **{f"{k}_{part}": _defined(stats[k][j][t].item()) for k in metrics
                                 for j, part in enumerate(("mean", "ci95"))}} for t in range(n_future)]
