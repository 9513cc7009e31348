"""Fréchet distance (and KID) between two sets of frames, with features from a trained SVG encoder.

Layers, as in pytorch-fid: images -> features (the SVG encoder, here) -> statistics (mean and
covariance in float64, streamed) -> distance (``feature_distances.py``). The encoder comes from a
checkpoint through the cache of ``svgvp/pretrained.py``. Importing this module has no side effects.

    from svgvp.metrics.frechet import frechet_distance
    d = frechet_distance(images1, images2)          # the shipped SM-MNIST SVG-LP encoder

Input range rule: uint8 (and other integer) images are in [0, 255]. Float images are taken as
[0, 1] when all values lie in [0, 1], and as [0, 255] when the maximum exceeds 2 (and all values
lie in [0, 255]); a maximum in (1, 2] is ambiguous and raises an error. Pass
``value_range=(0, 1)`` or ``(0, 255)`` to decide yourself.

A note on features: SVG passes appearance to the decoder through skip connections, so the
encoder's latent vector (the default feature) describes pose and motion more than static content.
``features="latent+skips"`` appends globally pooled skip-connection features.
"""
import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from svgvp.command_line import OneLineArgumentParser, warnings_as_one_line
from svgvp.metrics.feature_distances import (  # noqa: F401
    FeatureSets,
    InputError,
    RunningStatistics,
    add_kernel_distance_arguments,
    check_kernel_distance_arguments,
    check_kernel_distance_inputs,
    check_save_stats_paths,
    frechet_distance_from_features,
    frechet_distance_from_statistics,
    kernel_distance_from_features,
    load_statistics,
    print_both_distances,
    save_statistics,
    statistics_identity,
)
from svgvp.metrics.image_inputs import (  # noqa: F401
    batches_of,
    checked_images,
    in_value_range,
    infer_value_range,
    positive_batch_size,
    set_range,
)
from svgvp.metrics.numerics import full_float32
from svgvp.pretrained import (  # noqa: F401
    _MODEL_CACHE,
    DEFAULT_MODEL_PATH,
    PRETRAINED,
    clear_model_cache,
    load_encoder,
    resolve_model_path,
)
from svgvp.utils import DeviceError, file_sha256

FEATURES = ("latent", "latent+skips")


def _normalised(x, lo, hi, value_range, width, channels, origin="value_range", clip=False):
    x = in_value_range(x, lo, hi, value_range, origin, clip)
    if x.shape[1] != channels:
        if channels == 1:  # ITU-R 601 luma, as PIL's convert('L')
            x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (width, width):
        x = F.interpolate(x, size=(width, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x.contiguous()


SRVP_FD_SQRT_TRACE_METHODS = ("schur", "svd")
DEFAULT_BATCH_SIZE = 100


def _check_comparison_type(comparison_type):
    """srvp-fd's comparison_type: only "frame" has an SVG counterpart."""
    if comparison_type == "frame":
        return
    if comparison_type in ("static_content", "dynamics"):
        raise InputError(f"comparison_type='{comparison_type}' compares SRVP's {comparison_type.replace('_', ' ')} "
                         "variable, which SVG does not have; use features='latent+skips' (encoder features with the "
                         "pooled skip connections, which carry appearance) or fvd.fvd() for dynamics")
    raise InputError(f"comparison_type must be 'frame' (srvp-fd's other types have no SVG counterpart), "
                     f"got {comparison_type!r}")


def _check_sqrt_trace_method(method):
    if method is not None and method not in SRVP_FD_SQRT_TRACE_METHODS:
        raise InputError(f"sqrt_trace_method must be one of {SRVP_FD_SQRT_TRACE_METHODS} or None, got {method!r}")


class FrechetDistanceCalculator(FeatureSets):
    """Features, statistics and distances with one SVG encoder (loaded once, cached).

    srvp-fd's keywords are accepted: ``dataset="mmnist_stochastic"`` (SM-MNIST),
    ``comparison_type="frame"`` and ``sqrt_trace_method`` ("schur" or "svd": accepted and unneeded,
    the trace here is the nuclear norm of a product of covariance factors, with no matrix square
    root to approximate), ``batch_size=None`` (the default batch), and a per-call ``batch_size``.
    Unlike srvp-fd, ``extract_features`` returns a float64 numpy array.
    """

    item = "image"
    metric = "the Fréchet distance on the SVG encoder"
    small_set_advice = "compare sets of equal size or use kernel_distance()"

    def __init__(self, model_path=None, dataset=None, device=None, batch_size=DEFAULT_BATCH_SIZE, features="latent",
                 value_range=None, model=None, clip=False, sqrt_trace_method=None):
        """``model``: an SVG model already in memory, whose encoder is used instead of loading a file.
        ``clip=True`` clamps values into ``value_range`` (which it needs) instead of refusing them."""
        if features not in FEATURES:
            raise InputError(f"features must be one of {FEATURES}, got '{features}'")
        self.batch_size = positive_batch_size(batch_size, DEFAULT_BATCH_SIZE)
        set_range(value_range, clip)
        _check_sqrt_trace_method(sqrt_trace_method)
        if model is not None:
            self.encoder, self.config = model.encoder, model.config
            self.model_file = None
        else:
            self.encoder, self.config = load_encoder(model_path, device, dataset)
            self.model_file = resolve_model_path(model_path, dataset)
        self.device = next(self.encoder.parameters()).device
        self.features = features
        self.value_range, self.clip = value_range, clip

    def model_identity(self):
        """The checkpoint's sha256 and the feature kind (an in-memory model: unknown)."""
        if self.model_file is None:
            return "unknown"
        return f"SVG encoder, {self.features} features, checkpoint sha256 {file_sha256(self.model_file)[:16]}"

    @property
    def feature_dim(self):
        if self.features == "latent":
            return self.config.g_dim
        with torch.inference_mode():
            return self._features(torch.zeros(1, self.config.channels, self.config.image_width,
                                              self.config.image_width, device=self.device)).shape[1]

    def _feature_encoder(self):
        """The encoder in eval mode: features always use batch norm's running statistics. A caller's
        encoder in train mode (generate --bn_train_mode, a model being trained) is never switched: an
        eval copy, made once per set, computes them, so that neither its mode nor its buffers change,
        also while other threads use it."""
        return copy.deepcopy(self.encoder).eval() if self.encoder.training else self.encoder

    def _features(self, x, encoder=None):
        encoder = self._feature_encoder() if encoder is None else encoder
        with full_float32():
            h, skips = encoder(x)
        if self.features == "latent":
            return h
        return torch.cat([h] + [s.mean(dim=(2, 3)) for s in skips], 1)

    def feature_batches(self, images, batch_size=None):
        """Features (float64 numpy) batch by batch. One value range holds for the whole set: the
        explicit ``value_range``, or the one the first batch implies; a later batch outside it is an
        error, never silently a different scale."""
        value_range, origin = self.value_range, "value_range"
        encoder = self._feature_encoder()
        with torch.inference_mode():
            for k, batch in enumerate(batches_of(images)):
                x, integer, lo, hi = checked_images(batch)
                if value_range is None:
                    value_range, origin = infer_value_range(lo, hi, integer), "the first batch of this set"
                x = _normalised(x, lo, hi, value_range, self.config.image_width, self.config.channels,
                                origin if k == 0 else f"{origin} (in batch {k})", self.clip)
                step = positive_batch_size(batch_size, self.batch_size)
                for i in range(0, len(x), step):
                    yield self._features(x[i:i + step].to(self.device), encoder).double().cpu().numpy()

    def calculate_frechet_distance_from_features(self, f1, f2):
        return frechet_distance_from_features(f1, f2)

    def __call__(self, images1, images2, comparison_type="frame", batch_size=None):
        """The Fréchet distance between two image sets; ``batch_size`` overrides the calculator's for this call."""
        _check_comparison_type(comparison_type)
        return self.distance(images1, images2, batch_size)


def frechet_distance(images1, images2, model_path=None, device=None, dataset=None, batch_size=DEFAULT_BATCH_SIZE,
                     features="latent", value_range=None, comparison_type="frame", sqrt_trace_method=None, clip=False):
    """Fréchet distance between two image sets with an SVG encoder (cached across calls).

    images: (N, C, H, W) or (N, T, C, H, W), torch or numpy, uint8 or float (see the range rule
    above). ``model_path`` defaults to pretrained_models/svglp_smmnist2.pth; ``dataset`` picks a
    shipped model by name; ``device=None`` uses CUDA when present. ``comparison_type`` and
    ``sqrt_trace_method`` are srvp-fd's (see FrechetDistanceCalculator).
    """
    _check_comparison_type(comparison_type)
    calc = FrechetDistanceCalculator(model_path, dataset, device, batch_size, features, value_range, clip=clip,
                                     sqrt_trace_method=sqrt_trace_method)
    return calc(images1, images2)


# ----------------------------------------------------------------------------- command line
def load_input(path):
    """What the command line reads: images from a folder of images, .npy or .pt; or ('stats', mu, sigma, n,
    identity) from an .npz of statistics. Errors are InputError or FileNotFoundError with the fix."""
    if os.path.isdir(path):
        return load_image_folder(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file or folder: '{path}'")
    if path.endswith(".npz"):
        return ("stats",) + load_statistics(path) + (statistics_identity(path),)
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


def load_image_folder(path):
    """(N, C, H, W) uint8 numpy from a folder of images of one size, in name order; gray+alpha and RGBA lose
    their alpha, and gray is repeated to RGB when colour is mixed in."""
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
    from svgvp.training.checkpoint import CheckpointError
    p = OneLineArgumentParser(
        description="Fréchet distance between two image sets with an SVG encoder. With no inputs, runs the basic "
                    "example on two random image sets.")
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
    add_kernel_distance_arguments(p, "--kid", "KID", "image")
    args = p.parse_args(argv)
    warnings_as_one_line()
    try:
        check_kernel_distance_arguments(args, "--kid")
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
            check_save_stats_paths(*args.inputs, "images (a folder, .npy or .pt)")
            calc.compute_statistics(load_input(args.inputs[0]))
            written = calc.save_statistics(args.inputs[1])
            print(f"saved statistics of {calc.n} images to {written}")
            return 0
        data = [load_input(path) for path in args.inputs]
        check_kernel_distance_inputs(args, data, "--kid", "images (folders, .npy or .pt)")
        if args.kernel:
            print_both_distances(calc, data, args, "KID")
        else:
            print(f"{calc.compare(data):.6f}")
        return 0
    except (InputError, FileNotFoundError, CheckpointError, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
