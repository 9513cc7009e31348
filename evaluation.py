"""The best-of-N evaluation protocol in one place: score samples, choose the best one, summarise.

Every caller (generate_svg_lp.py, the per-epoch training plots, pretrained_models/check_quality.py)
chooses "the best sample" through these functions, so the rule cannot drift between them:
- evaluation (2018 generate scripts): per metric, the sample with the best mean over the predicted
  frames; ``psnr_2018`` is the PSNR of the best-SSIM sample (the 2018 GIFs' "best");
- the 2018 training plots: the sample with the smallest squared error over the whole sequence.
"""
import torch

from metrics import mean_confidence, psnr, ssim

# metrics.csv columns, in order
METRICS = ("ssim_best", "psnr_best", "psnr_2018", "ssim_posterior", "psnr_posterior")


def score_samples(samples, truth, ssim_variant="standard"):
    """Per-sample, per-frame (SSIM, PSNR): samples (B, S, T, C, H, W) against truth (B, T, C, H, W)."""
    target = truth[:, None].expand_as(samples)
    return ssim(samples, target, ssim_variant), psnr(samples, target)


def best_sample(scores):
    """(index (B,), its mean score (B,)) of the sample with the highest mean over the frames of scores (B, S, T)."""
    mean = scores.mean(2)
    score, index = mean.max(1)
    return index, score


def of_sample(scores, index):
    """scores (B, S, T) of one sample per sequence -> (B, T)."""
    return scores[torch.arange(scores.shape[0], device=scores.device), index.to(scores.device)]


def best_of_n(ssims, psnrs):
    """The per-frame metrics of the best sample of each sequence, chosen per metric (B, T) each."""
    best_ssim, _ = best_sample(ssims)
    best_psnr, _ = best_sample(psnrs)
    return {"ssim_best": of_sample(ssims, best_ssim), "psnr_best": of_sample(psnrs, best_psnr),
            "psnr_2018": of_sample(psnrs, best_ssim)}


def lowest_error_sample(samples, x):
    """Index (B,) of the sample with the smallest summed squared error to x over all frames (2018 training plot)."""
    return ((samples - x[:, None]) ** 2).flatten(2).sum(2).argmin(1)


def summarise(metrics, n_past):
    """metrics_summary.csv rows: per time step, each metric's mean and 95% interval over sequences."""
    stats = {k: mean_confidence(v) for k, v in metrics.items()}               # each: ((n_future,), (n_future,))
    n_future = next(iter(metrics.values())).shape[1]
    return [{"t": n_past + t, **{f"{k}_{part}": stats[k][j][t].item() for k in metrics
                                 for j, part in enumerate(("mean", "ci95"))}} for t in range(n_future)]
