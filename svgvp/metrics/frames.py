"""Frame metrics, batched in torch (CPU or GPU): SSIM in two variants and PSNR.

``ssim(x, y, variant="standard")``: 11x11 Gaussian window (sigma 1.5), population covariance,
data range 1 -- the SSIM later papers report. ``variant="2018"``: what scikit-image's
``structural_similarity`` computed for float images in 2018 (7x7 uniform window, sample
covariance, data range 2, the dtype range of floats), as in the SVG paper's curves.
Both equal scikit-image's ``structural_similarity`` with those settings (borders cropped).
Multi-channel images: the mean over channels, as the 2018 evaluation did.
"""
import math

import torch
import torch.nn.functional as F

SSIM_VARIANTS = ("standard", "2018")
K1, K2 = 0.01, 0.03


CHUNK = 1024  # images filtered at a time: bounds memory for large sample sets


def _window(variant, device):
    """(1-D window w, sample covariance?, data range); the 2-D window is outer(w, w)."""
    if variant == "standard":
        size, sigma = 11, 1.5
        g = torch.exp(-((torch.arange(size, dtype=torch.float64, device=device) - size // 2) ** 2) / (2 * sigma ** 2))
        return g / g.sum(), False, 1.0
    if variant == "2018":
        size = 7
        return torch.full((size,), 1.0 / size, dtype=torch.float64, device=device), True, 2.0
    raise ValueError(f"unknown SSIM variant '{variant}'; choose one of {', '.join(SSIM_VARIANTS)}")


def ssim(x, y, variant="standard"):
    """SSIM of image pairs x, y: (..., C, H, W) in [0, 1] -> (...) float64, mean over channels."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    window, sample_cov, data_range = _window(variant, x.device)
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    k = window.shape[0]
    if h < k or w < k:
        raise ValueError(f"images of {h}x{w} are smaller than the {k}x{k} SSIM window")
    a = x.reshape(-1, 1, h, w)
    b = y.reshape(-1, 1, h, w)
    out = torch.cat([_ssim_maps(a[i:i + CHUNK].double(), b[i:i + CHUNK].double(), window, sample_cov, data_range)
                     for i in range(0, a.shape[0], CHUNK)])
    return out.view(*lead, c).mean(-1)


def _ssim_maps(a, b, window, sample_cov, data_range):
    """Mean SSIM of each (1, H, W) image pair in a (N, 1, H, W) chunk."""
    k = window.shape[0]
    row, col = window.view(1, 1, 1, k), window.view(1, 1, k, 1)
    filt = lambda t: F.conv2d(F.conv2d(t, row), col)  # noqa: E731  separable, 'valid': skimage crops borders
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a ** 2
    var_b = filt(b * b) - mu_b ** 2
    cov = filt(a * b) - mu_a * mu_b
    if sample_cov:
        n = k * k
        var_a, var_b, cov = (v * n / (n - 1) for v in (var_a, var_b, cov))
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3))


def psnr(x, y):
    """PSNR (data range 1) of image pairs: (..., C, H, W) -> (...) float64, mean over channels."""
    mse = ((x.double() - y.double()) ** 2).mean(dim=(-2, -1))
    return (10 * torch.log10(1.0 / mse)).mean(-1)


def mean_confidence(values):
    """(mean, half-width of the 95% normal confidence interval) over the first axis; the
    half-width is NaN (undefined) for a single value."""
    values = values.double()
    n = values.shape[0]
    std = values.std(0) if n > 1 else torch.full_like(values[0], float("nan"))
    return values.mean(0), 1.96 * std / math.sqrt(max(n, 1))
