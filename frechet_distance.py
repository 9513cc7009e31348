"""Fréchet distance (and KID) between two sets of frames, with features from a trained SVG encoder.

Layers, as in pytorch-fid: images -> features (the SVG encoder, here) -> statistics (mean and
covariance in float64, streamed) -> distance (``feature_distances.py``). The encoder comes from a
checkpoint through the cache of ``pretrained.py``. Importing this module has no side effects.

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
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from feature_distances import (InputError, RunningStatistics, frechet_distance_from_features,  # noqa: F401
                               frechet_distance_from_statistics, kernel_distance_from_features, load_statistics,
                               save_statistics)
from pretrained import (_MODEL_CACHE, DEFAULT_MODEL_PATH, PRETRAINED, clear_model_cache, load_encoder,  # noqa: F401
                        resolve_model_path)
from utils import DeviceError, OneLineArgumentParser

FEATURES = ("latent", "latent+skips")


# ----------------------------------------------------------------------------- images
def _to_tensor(images):
    if isinstance(images, np.ndarray):
        if images.dtype.kind not in "uif":
            raise InputError(f"images must be numeric, got dtype {images.dtype}")
        if not images.dtype.isnative:  # big-endian data (e.g. from another machine's file): torch needs native
            images = images.astype(images.dtype.newbyteorder("="))
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
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise InputError(f"images have zero height or width: shape {tuple(x.shape)}")
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
        """Write the statistics of the last compute_statistics() to an .npz file; returns the path written."""
        if self.mu is None:
            raise RuntimeError("call compute_statistics(images) before save_statistics(path)")
        return save_statistics(path, self.mu, self.sigma, self.n)

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


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def _gray_or_rgb(img, name):
    """(H, W, 1) or (H, W, 3) uint8 from a gray, gray+alpha, RGB or RGBA image (alpha dropped)."""
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"'{name}' has shape {img.shape}, not a gray or colour image")
    if img.dtype != np.uint8:
        raise InputError(f"'{name}' has {img.dtype} pixels; save it with 8 bits per channel")
    return img[..., :1] if img.shape[2] == 2 else img[..., :3]


def _load_image_folder(path):
    """(N, C, H, W) uint8 from a folder of images of one size; gray is repeated to RGB when colour is mixed in."""
    import imageio.v3 as iio
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)
                   and os.path.isfile(os.path.join(path, n)))
    if not names:
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder '{path}'")
    imgs = []
    for n in names:
        try:
            img = iio.imread(os.path.join(path, n))
        except Exception as err:  # imageio raises many types for unreadable files
            raise InputError(f"'{os.path.join(path, n)}' is not a readable image ({type(err).__name__}); "
                             f"remove it from the folder") from None
        img = _gray_or_rgb(np.asarray(img), os.path.join(path, n))
        if imgs and img.shape[:2] != imgs[0].shape[:2]:
            raise InputError(f"images in '{path}' differ in size ({names[0]}: {imgs[0].shape[0]}x{imgs[0].shape[1]}, "
                             f"{n}: {img.shape[0]}x{img.shape[1]}); resize them to one size")
        imgs.append(img)
    if any(i.shape[2] == 3 for i in imgs):
        imgs = [np.repeat(i, 3, axis=2) if i.shape[2] == 1 else i for i in imgs]
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
            if not args.inputs[1].endswith(".npz"):
                raise InputError(f"--save-stats writes an .npz file; name the output '<name>.npz', not "
                                 f"'{args.inputs[1]}'")
            if args.inputs[0].endswith(".npz"):
                raise InputError(f"'{args.inputs[0]}' already holds statistics; --save-stats needs images "
                                 f"(a folder, .npy or .pt) as its first input")
            calc.compute_statistics(_load_input(args.inputs[0]))
            written = calc.save_statistics(args.inputs[1])
            print(f"saved statistics of {calc.n} images to {written}")
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
