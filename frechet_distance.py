"""Fréchet distance (and KID) between two sets of frames, with features from a trained SVG encoder.

Layers, as in pytorch-fid: images -> features (the SVG encoder) -> statistics (mean and covariance
in float64, streamed) -> distance. Importing this module has no side effects.

    from frechet_distance import frechet_distance
    d = frechet_distance(images1, images2)          # the shipped SM-MNIST SVG-LP encoder

Input range rule: uint8 (and other integer) images are in [0, 255]. Float images are taken as
[0, 1] when all values lie in [0, 1], and as [0, 255] when the maximum exceeds 2 (and all values
lie in [0, 255]); a maximum in (1, 2] is ambiguous and raises an error. Pass
``value_range=(0, 1)`` or ``(0, 255)`` to decide yourself.

A note on features: SVG passes appearance to the decoder through skip connections, so the
encoder's latent vector (the default feature) describes pose and motion more than static content.
``features="latent+skips"`` appends globally pooled skip-connection features.
"""
import argparse
import os
import sys
import threading
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from utils import DeviceError, OneLineArgumentParser, choose_device

ROOT = os.path.dirname(os.path.abspath(__file__))
PRETRAINED_DIR = os.path.join(ROOT, "pretrained_models")
# dataset name -> file in pretrained_models/. "smmnist" is ours (shipped); "bair" is the authors'
# 2018 file, which a user downloads from edenton/svg and puts there (read by checkpoint_2018).
PRETRAINED = {"smmnist": "svglp_smmnist2.pth", "bair": "svglp_bair.pth"}
NOT_SHIPPED = {"bair": "the authors' 2018 SVG-LP BAIR model is published in the edenton/svg repository as "
                       "pretrained_models/svglp_bair.pth; download it and put it at that path"}
DEFAULT_MODEL_PATH = os.path.join(PRETRAINED_DIR, PRETRAINED["smmnist"])
FEATURES = ("latent", "latent+skips")
_MODEL_CACHE = {}
_MODEL_CACHE_LOCK = threading.Lock()  # threads on a cold cache load each model once


class InputError(ValueError):
    """Images that cannot be compared as given; the message names the problem and the fix."""


# ----------------------------------------------------------------------------- distance
PSD_TOLERANCE = 1e-8  # relative: asymmetry and negative eigenvalues allowed in a covariance, for rounding


def frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2), in float64.

    With any factors B B^T = S (Cholesky, or the eigen-decomposition when S is singular),
    tr((S1 S2)^1/2) is the nuclear norm (sum of singular values) of B1^T B2. No
    ``scipy.linalg.sqrtm``, so the result is always real, and no product S1^1/2 S2 S1^1/2 whose
    small eigenvalues would lose half their digits. Rounding can make the result slightly negative
    for (near-)identical statistics; that value is returned as is, not clipped. Each sigma must be
    symmetric positive semi-definite to a relative tolerance of PSD_TOLERANCE.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise InputError(f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    for name, a in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.all(np.isfinite(a)):
            raise InputError(f"{name} contains NaN or infinite values")
    b1, b2 = _covariance_factor(s1, "sigma1"), _covariance_factor(s2, "sigma2")
    trace_sqrt = np.linalg.svd(b1.T @ b2, compute_uv=False).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def _covariance_factor(s, name):
    """B with B B^T = s; raises InputError if s is not symmetric positive semi-definite.

    Cholesky when s is positive definite (fast, and unaffected by the scale of each dimension);
    otherwise V diag(sqrt(w)) from the symmetric eigen-decomposition.
    """
    scale = np.abs(s).max()
    if np.abs(s - s.T).max() > PSD_TOLERANCE * max(scale, 1e-300):
        raise InputError(f"{name} is not symmetric; pass a covariance matrix")
    s = (s + s.T) / 2
    try:
        return np.linalg.cholesky(s)
    except np.linalg.LinAlgError:  # singular (fewer samples than dimensions) or not PSD: decide below
        pass
    w, v = np.linalg.eigh(s)
    if w.size and w.min() < -PSD_TOLERANCE * max(np.abs(w).max(), 1e-300):
        raise InputError(f"{name} is not positive semi-definite (eigenvalue {w.min():.3g}); pass a covariance matrix")
    return v * np.sqrt(np.clip(w, 0, None))


def frechet_distance_from_features(f1, f2):
    """Fréchet distance between two feature sets (N1, d) and (N2, d), in float64.

    With no more samples than dimensions (the covariance is then singular: rank N - 1) it uses the
    nuclear-norm form, tr((S1 S2)^1/2) =
    ||X1c X2c^T||_* / sqrt((N1-1)(N2-1)), which is exact and works on N x N matrices.
    """
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    for name, f in (("first", f1), ("second", f2)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise InputError(f"the {name} feature set must be (N >= 2, d), got shape {f.shape}")
    if f1.shape[1] != f2.shape[1]:
        raise InputError(f"feature dimensions differ: {f1.shape[1]} vs {f2.shape[1]}")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    x1, x2 = f1 - mu1, f2 - mu2
    n1, n2 = len(f1), len(f2)
    if min(n1, n2) <= f1.shape[1]:  # the same rule as the small-sample warning
        tr1 = (x1 ** 2).sum() / (n1 - 1)
        tr2 = (x2 ** 2).sum() / (n2 - 1)
        nuclear = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
        return float(((mu1 - mu2) ** 2).sum() + tr1 + tr2 - 2 * nuclear)
    return frechet_distance_from_statistics(mu1, np.cov(x1, rowvar=False), mu2, np.cov(x2, rowvar=False))


def kernel_distance_from_features(f1, f2, num_subsets=100, subset_size=1000, seed=0):
    """Unbiased KID (MMD^2 with the kernel (x.y/d + 1)^3) over seeded random subsets: (mean, std error)."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise InputError(f"KID needs two feature sets (N, d) of the same d, got shapes {f1.shape} and {f2.shape}")
    if not (isinstance(num_subsets, int) and num_subsets >= 1 and isinstance(subset_size, int) and subset_size >= 2):
        raise InputError(f"num_subsets must be at least 1 and subset_size at least 2, got {num_subsets} and "
                         f"{subset_size}")
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise InputError("KID needs at least 2 samples in each set")
    d = f1.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for k in range(num_subsets):
        a = f1[rng.choice(len(f1), m, replace=False)]
        b = f2[rng.choice(len(f2), m, replace=False)]
        kaa, kbb, kab = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
        values[k] = ((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
                     - 2 * kab.mean())
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(num_subsets) if num_subsets > 1 else 0.0)


# ----------------------------------------------------------------------------- statistics
class RunningStatistics:
    """Mean and covariance accumulated batch by batch in float64 (sets larger than memory)."""

    def __init__(self):
        self.n, self.shift, self.sum, self.outer = 0, None, None, None

    def update(self, features):
        f = np.asarray(features, np.float64)
        if self.shift is None:
            self.shift = f.mean(0)  # shifting by a first estimate keeps the sums well conditioned
            self.sum = np.zeros_like(self.shift)
            self.outer = np.zeros((f.shape[1], f.shape[1]))
        f = f - self.shift
        self.n += len(f)
        self.sum += f.sum(0)
        self.outer += f.T @ f

    def result(self):
        """(mu, sigma, n)."""
        if self.n < 2:
            raise InputError(f"need at least 2 images to compute statistics, got {self.n}")
        mean = self.sum / self.n
        cov = (self.outer - self.n * np.outer(mean, mean)) / (self.n - 1)
        return mean + self.shift, (cov + cov.T) / 2, self.n


def save_statistics(path, mu, sigma, n=None):
    np.savez(path, mu=mu, sigma=sigma, **({} if n is None else {"n": n}))


def load_statistics(path):
    """(mu, sigma) from an .npz file with arrays 'mu' and 'sigma'."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no statistics file at '{path}'")
    with np.load(path) as f:
        if "mu" not in f or "sigma" not in f:
            raise InputError(f"'{path}' has no 'mu' and 'sigma' arrays")
        return f["mu"], f["sigma"]


# ----------------------------------------------------------------------------- images
def _to_tensor(images):
    if isinstance(images, np.ndarray):
        if images.dtype.kind not in "uif":
            raise InputError(f"images must be numeric, got dtype {images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise InputError(f"images must be a torch tensor or numpy array, got {type(images).__name__}")
    if images.dtype == torch.bool or images.is_complex():
        raise InputError(f"images must be real numbers, got dtype {images.dtype}")
    return images


def _checked_images(images):
    """(float32 (N, C, H, W) tensor, was_integer, min, max) after the shape, dtype and finiteness checks."""
    x = _to_tensor(images)
    if x.dim() == 5:
        x = x.reshape(-1, *x.shape[2:])
    if x.dim() != 4:
        raise InputError(f"images must be (N, C, H, W) or (N, T, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError("the image set is empty")
    if x.shape[1] not in (1, 3):
        raise InputError(f"images must have 1 or 3 channels in dimension 1 (N, C, H, W), got {x.shape[1]}; "
                         "channels-last arrays need .permute(0, 3, 1, 2)")
    integer = not x.is_floating_point()
    x = x.float() if integer else x.to(torch.float32)
    if not torch.isfinite(x).all():
        raise InputError("images contain NaN or infinite values")
    lo, hi = (v.item() for v in torch.aminmax(x))  # one pass, read once for the range rule and its check
    return x, integer, lo, hi


def infer_value_range(lo, hi, integer):
    """The range rule of the module docstring, from one batch's extremes: (0, 1) or (0, 255)."""
    if integer or (hi > 2 and lo >= 0):
        return (0, 255)
    if lo >= 0 and hi <= 1:
        return (0, 1)
    if lo >= 0 and hi <= 2:
        raise InputError(f"float images with maximum {hi:.3g} are ambiguous (between [0, 1] and [0, 255]); "
                         "pass value_range=(0, 1) or (0, 255)")
    raise InputError(f"image values span [{lo:.3g}, {hi:.3g}], outside [0, 1] and [0, 255]; "
                     "rescale them or pass value_range=(low, high)")


def _value_range_pair(value_range):
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise InputError(f"value_range must be a pair (low, high) such as (0, 1) or (0, 255), got {value_range!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise InputError(f"value_range must be finite with high > low, got {value_range!r}")
    return low, high


def _normalised(x, lo, hi, value_range, width, channels, origin="value_range"):
    low, high = _value_range_pair(value_range)
    if lo < low - 1e-6 or hi > high + 1e-6:
        raise InputError(f"image values span [{lo:.3g}, {hi:.3g}], outside the range {value_range} set by {origin}; "
                         f"pass value_range= for the whole set")
    x = (x - low) / (high - low)
    if x.shape[1] != channels:
        if channels == 1:  # ITU-R 601 luma, as PIL's convert('L')
            x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (width, width):
        x = F.interpolate(x, size=(width, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x.contiguous()


def prepare_images(images, width, channels, value_range=None):
    """Validate and convert one batch of images to float32 (N, channels, width, width) in [0, 1].

    Accepts (N, C, H, W) or videos (N, T, C, H, W) with C in {1, 3}; see the module docstring for
    the value-range rule. For a set given as several batches, the calculator decides the range
    once, from the first batch (see ``FrechetDistanceCalculator.extract_features``).
    """
    x, integer, lo, hi = _checked_images(images)
    origin = "value_range"
    if value_range is None:
        value_range, origin = infer_value_range(lo, hi, integer), "the images' own values"
    return _normalised(x, lo, hi, value_range, width, channels, origin)


# ----------------------------------------------------------------------------- model
def resolve_model_path(model_path=None, dataset=None):
    if dataset is not None:
        if dataset not in PRETRAINED:
            raise InputError(f"unknown dataset '{dataset}'; pretrained models exist for: {', '.join(PRETRAINED)}")
        path = os.path.join(PRETRAINED_DIR, PRETRAINED[dataset])
        if not os.path.isfile(path):
            if dataset in NOT_SHIPPED:
                raise FileNotFoundError(f"no model file at '{path}': {NOT_SHIPPED[dataset]}")
            shipped = [k for k, v in PRETRAINED.items() if os.path.isfile(os.path.join(PRETRAINED_DIR, v))]
            raise FileNotFoundError(f"the pretrained model for '{dataset}' is not shipped ({path}); "
                                    f"available: {', '.join(shipped) or 'none'}")
        return path
    path = os.path.abspath(model_path or DEFAULT_MODEL_PATH)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at '{path}'; pass model_path= a checkpoint from train_svg_lp.py")
    return path


def load_encoder(model_path=None, device=None, dataset=None):
    """(encoder in eval mode, config) from a checkpoint (ours or a 2018 edenton/svg file).

    Cached in memory by the file's identity (path, size, modification time) and the device, so a
    file rewritten in place is read again; concurrent callers load each key once.
    """
    from checkpoint import describe_source, load_model
    path = resolve_model_path(model_path, dataset)
    device = choose_device(device)  # None or "auto": CUDA when present
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns, str(device))
    with _MODEL_CACHE_LOCK:
        if key not in _MODEL_CACHE:
            model, ckpt = load_model(path, device)
            if describe_source(ckpt):
                print(describe_source(ckpt), file=sys.stderr)
            for stale in [k for k in _MODEL_CACHE if k[0] == path and k[3] == key[3]]:
                del _MODEL_CACHE[stale]
            _MODEL_CACHE[key] = (model.encoder.eval(), model.config)
        return _MODEL_CACHE[key]


def clear_model_cache():
    """Forget every cached encoder (frees its memory)."""
    _MODEL_CACHE.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class FrechetDistanceCalculator:
    """Features, statistics and distances with one SVG encoder (loaded once, cached)."""

    def __init__(self, model_path=None, dataset=None, device=None, batch_size=100, features="latent",
                 value_range=None, model=None):
        """``model``: an SVG model already in memory, whose encoder is used instead of loading a file."""
        if features not in FEATURES:
            raise InputError(f"features must be one of {FEATURES}, got '{features}'")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if value_range is not None:
            _value_range_pair(value_range)
        if model is not None:
            self.encoder, self.config = model.encoder, model.config
        else:
            self.encoder, self.config = load_encoder(model_path, device, dataset)
        self.device = next(self.encoder.parameters()).device
        self.batch_size = batch_size
        self.features = features
        self.value_range = value_range
        self.mu, self.sigma, self.n = None, None, None

    @property
    def feature_dim(self):
        if self.features == "latent":
            return self.config.g_dim
        with torch.inference_mode():
            return self._features(torch.zeros(1, self.config.channels, self.config.image_width,
                                              self.config.image_width, device=self.device)).shape[1]

    def _features(self, x):
        training = self.encoder.training  # a shared encoder may be in train mode (generate --bn_train_mode)
        self.encoder.eval()               # features always use the running statistics
        try:
            h, skips = self.encoder(x)
        finally:
            self.encoder.train(training)
        if self.features == "latent":
            return h
        return torch.cat([h] + [s.mean(dim=(2, 3)) for s in skips], 1)

    def _batches(self, images):
        if isinstance(images, (torch.Tensor, np.ndarray)):
            yield images
        else:
            yield from images

    def _feature_batches(self, images):
        """Features (float64 numpy) batch by batch. One value range holds for the whole set: the
        explicit ``value_range``, or the one the first batch implies; a later batch outside it is an
        error, never silently a different scale."""
        value_range, origin = self.value_range, "value_range"
        with torch.inference_mode():
            for k, batch in enumerate(self._batches(images)):
                x, integer, lo, hi = _checked_images(batch)
                if value_range is None:
                    value_range, origin = infer_value_range(lo, hi, integer), "the first batch of this set"
                x = _normalised(x, lo, hi, value_range, self.config.image_width, self.config.channels,
                                origin if k == 0 else f"{origin} (in batch {k})")
                for i in range(0, len(x), self.batch_size):
                    yield self._features(x[i:i + self.batch_size].to(self.device)).double().cpu().numpy()

    def extract_features(self, images):
        """(N, d) float64 numpy features of images (array, tensor, or an iterable of batches)."""
        out = list(self._feature_batches(images))
        if not out:
            raise InputError("the image set is empty")
        return np.concatenate(out)

    def compute_statistics(self, images):
        """(mu, sigma, n) of the features, streamed in float64; also kept for save_statistics()."""
        stats = RunningStatistics()
        for features in self._feature_batches(images):
            stats.update(features)
        self.mu, self.sigma, self.n = stats.result()
        self._warn_small(self.n)
        return self.mu, self.sigma, self.n

    def save_statistics(self, path):
        if self.mu is None:
            raise RuntimeError("call compute_statistics(images) before save_statistics(path)")
        save_statistics(path, self.mu, self.sigma, self.n)

    def _warn_small(self, n):
        if n <= self.feature_dim:  # rank n - 1 < d: the covariance is singular
            warnings.warn(f"a set has {n} samples, not more than the feature dimension {self.feature_dim}: the "
                          "covariance is singular and the distance is strongly biased; compare sets of equal "
                          "size or use kernel_distance()", stacklevel=3)

    def calculate_frechet_distance_from_features(self, f1, f2):
        return frechet_distance_from_features(f1, f2)

    def __call__(self, images1, images2):
        f1, f2 = self.extract_features(images1), self.extract_features(images2)
        for f in (f1, f2):
            if len(f) < 2:
                raise InputError(f"each set needs at least 2 images, got {len(f)}")
            self._warn_small(len(f))
        return frechet_distance_from_features(f1, f2)

    def kernel_distance(self, images1, images2, num_subsets=100, subset_size=1000, seed=0):
        """(KID mean, standard error) between two image sets."""
        return kernel_distance_from_features(self.extract_features(images1), self.extract_features(images2),
                                             num_subsets, subset_size, seed)


def frechet_distance(images1, images2, model_path=None, device=None, dataset=None, batch_size=100,
                     features="latent", value_range=None):
    """Fréchet distance between two image sets with an SVG encoder (cached across calls).

    images: (N, C, H, W) or (N, T, C, H, W), torch or numpy, uint8 or float (see the range rule
    above). ``model_path`` defaults to pretrained_models/svglp_smmnist2.pth; ``dataset`` picks a
    shipped model by name; ``device=None`` uses CUDA when present.
    """
    calc = FrechetDistanceCalculator(model_path, dataset, device, batch_size, features, value_range)
    return calc(images1, images2)


# ----------------------------------------------------------------------------- command line
def _load_input(path):
    """Images from a folder of images, .npy or .pt; or ('stats', mu, sigma) from .npz."""
    if os.path.isdir(path):
        return _load_image_folder(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file or folder: '{path}'")
    if path.endswith(".npz"):
        return ("stats",) + load_statistics(path)
    if path.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InputError(f"'{path}' is not a numeric .npy array ({str(err).splitlines()[0]}); save images "
                             f"with np.save(path, array)") from None
    if path.endswith(".pt"):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # refused pickles, corrupt archives: all end the same way here
            raise InputError(f"'{path}' is not a tensor file that loads with weights_only=True "
                             f"({type(err).__name__}); save images with torch.save(tensor, path)") from None
        if not isinstance(data, torch.Tensor):
            raise InputError(f"'{path}' holds a {type(data).__name__}, not a tensor of images")
        return data
    raise InputError(f"'{path}': use a folder of images, .npy, .pt or an .npz of statistics")


def _load_image_folder(path):
    import imageio.v3 as iio
    names = sorted(n for n in os.listdir(path) if n.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")))
    if not names:
        raise InputError(f"no .png/.jpg images in folder '{path}'")
    imgs = []
    for n in names:
        try:
            img = iio.imread(os.path.join(path, n))
        except Exception as err:  # imageio raises many types for unreadable files
            raise InputError(f"'{os.path.join(path, n)}' is not a readable image ({type(err).__name__}); "
                             f"remove it from the folder") from None
        img = img[..., None] if img.ndim == 2 else img[..., :3]
        if img.shape[:2] != (imgs[0].shape[:2] if imgs else img.shape[:2]):
            raise InputError(f"images in '{path}' differ in size ({names[0]}: {imgs[0].shape[0]}x{imgs[0].shape[1]}, "
                             f"{n}: {img.shape[0]}x{img.shape[1]}); resize them to one size")
        if imgs and img.shape[2] != imgs[0].shape[2]:
            img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
            if imgs[0].shape[2] == 1:
                imgs = [np.repeat(i, 3, axis=2) for i in imgs]
        imgs.append(img)
    return np.stack(imgs).transpose(0, 3, 1, 2)


def main(argv=None):
    from checkpoint import CheckpointError
    p = OneLineArgumentParser(
        description="Fréchet distance between two image sets with an SVG encoder. With no inputs, runs the basic "
                    "example on two random image sets.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("inputs", nargs="*", help="two inputs: image folders, .npy, .pt, or .npz statistics")
    p.add_argument("--model-path", "--model_path", dest="model_path", default=None,
                   help="SVG checkpoint, ours or a 2018 edenton/svg file (default: the shipped SM-MNIST model)")
    p.add_argument("--dataset", default=None, help=f"pretrained model by name: {', '.join(PRETRAINED)}")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: CUDA when present)")
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=100,
                   help="images per encoder call")
    p.add_argument("--features", default="latent", choices=FEATURES, help="encoder features to compare")
    p.add_argument("--save-stats", "--save_stats", dest="save_stats", action="store_true",
                   help="write the statistics of input 1 to input 2 (.npz)")
    args = p.parse_args(argv)
    try:
        calc = FrechetDistanceCalculator(args.model_path, args.dataset, args.device, args.batch_size, args.features)
        if not args.inputs:
            # the basic example: two random image sets
            g = torch.Generator().manual_seed(0)
            a = torch.rand(200, 1, 64, 64, generator=g)
            b = torch.rand(200, 1, 64, 64, generator=g) ** 2
            print(f"Fréchet distance between two random image sets: {calc(a, b):.4f}")
            return 0
        if len(args.inputs) != 2:
            raise InputError("give two inputs (or none for the basic example)")
        if args.save_stats:
            data = _load_input(args.inputs[0])
            calc.compute_statistics(data)
            calc.save_statistics(args.inputs[1])
            print(f"saved statistics of {calc.n} images to {args.inputs[1]}")
            return 0
        data = [_load_input(path) for path in args.inputs]
        if not any(isinstance(d, tuple) for d in data):
            print(f"{calc(*data):.6f}")  # both are images: the from-features route (exact when N < d)
            return 0
        stats = [d[1:] if isinstance(d, tuple) else calc.compute_statistics(d)[:2] for d in data]
        print(f"{frechet_distance_from_statistics(*stats[0], *stats[1]):.6f}")
        return 0
    except (InputError, FileNotFoundError, CheckpointError, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
