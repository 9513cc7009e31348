"""The input rules shared by the Fréchet distance, FVD and LPIPS: what an image or video set may be.

Torch tensors or numpy arrays of real numbers, finite. Range rule: uint8 (and other integer)
values are in [0, 255]. Float values are taken as [0, 1] when all lie in [0, 1], and as [0, 255]
when the maximum exceeds 2 (and all lie in [0, 255]); a maximum in (1, 2] is ambiguous and is an
error. ``value_range=(low, high)`` decides instead; ``clip=True`` clamps values into it first (for
generator outputs a hair outside [0, 1]). One range holds for a whole set: the explicit one, or
the one its first batch implies.
"""
import numpy as np
import torch

from svgvp.metrics.feature_distances import InputError


def to_tensor(images):
    """A tensor of real numbers from a tensor or numpy array (native byte order), detached from autograd."""
    if isinstance(images, np.ndarray):
        if images.dtype.kind not in "uif":
            raise InputError(f"images and videos must be numeric, got dtype {images.dtype}")
        if not images.dtype.isnative:  # big-endian data (e.g. from another machine's file): torch needs native
            images = images.astype(images.dtype.newbyteorder("="))
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise InputError(f"images and videos must be a torch tensor or numpy array, got {type(images).__name__}")
    if images.dtype == torch.bool or images.is_complex():
        raise InputError(f"images and videos must be real numbers, got dtype {images.dtype}")
    return images.detach()  # the metrics are values, not losses: a tensor that requires grad is read as data


def value_extremes(x):
    """(min, max) of a real tensor of any dtype, read in one pass (the range rule's input)."""
    if x.dtype in (torch.uint16, torch.uint32, torch.uint64):  # PyTorch has no min/max kernels for these
        x = x.to(torch.float64)                                 # exact up to 2**53
    return tuple(float(v) for v in torch.aminmax(x))


def checked_image_set(images):
    """((N, C, H, W) tensor in its own dtype, was_integer, min, max) after the shape, dtype and finiteness
    checks; (N, T, C, H, W) is taken as N*T images. No float copy of the set is made."""
    x = to_tensor(images)
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
    if not integer and not torch.isfinite(x).all():
        raise InputError("images contain NaN or infinite values")
    lo, hi = value_extremes(x)  # one pass, read once for the range rule and its check
    return x, integer, lo, hi


def checked_images(images):
    """(float32 (N, C, H, W) tensor, was_integer, min, max): ``checked_image_set`` converted to float32."""
    x, integer, lo, hi = checked_image_set(images)
    return x.to(torch.float32), integer, lo, hi


def checked_videos(videos, min_frames):
    """((N, T, C, H, W) tensor in its own dtype, was_integer, min, max) after the shape, dtype and finiteness
    checks; the conversion to float32 happens per I3D batch, so memory grows with batch_size, not N."""
    x = to_tensor(videos)
    if x.dim() != 5:
        raise InputError(f"videos must be (N, T, C, H, W), got shape {tuple(x.shape)}")
    n, t, c, h, w = x.shape
    if n == 0:
        raise InputError("the video set is empty")
    if c not in (1, 3):
        raise InputError(f"videos must have 1 or 3 channels in dimension 2 (N, T, C, H, W), got {c}; "
                         "channels-last arrays need .permute(0, 1, 4, 2, 3)")
    if t < min_frames:
        raise InputError(f"videos of {t} frames are too short for I3D, which needs at least {min_frames} "
                         "(FVD is usually computed on 16)")
    if h == 0 or w == 0:
        raise InputError(f"videos have zero height or width: shape {tuple(x.shape)}")
    integer = not x.is_floating_point()
    if not integer and not torch.isfinite(x).all():
        raise InputError("videos contain NaN or infinite values")
    lo, hi = value_extremes(x)  # on the input's own dtype: no float copy of the whole set (but for uint16-64)
    return x, integer, lo, hi


def infer_value_range(lo, hi, integer):
    """The range rule of the module docstring, from one batch's extremes: (0, 1) or (0, 255)."""
    if integer or (hi > 2 and lo >= 0):
        return (0, 255)
    if lo >= 0 and hi <= 1:
        return (0, 1)
    if lo >= 0 and hi <= 2:
        raise InputError(f"float values with maximum {hi:.3g} are ambiguous (between [0, 1] and [0, 255]); "
                         "pass value_range=(0, 1) or (0, 255)")
    raise InputError(f"values span [{lo:.3g}, {hi:.3g}], outside [0, 1] and [0, 255]; "
                     "rescale them or pass value_range=(low, high)")


def value_range_pair(value_range):
    """(low, high) floats from a user's value_range, checked."""
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise InputError(f"value_range must be a pair (low, high) such as (0, 1) or (0, 255), got {value_range!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise InputError(f"value_range must be finite with high > low, got {value_range!r}")
    return low, high


def in_value_range(x, lo, hi, value_range, origin, clip=False):
    """x (float) mapped from value_range to [0, 1]; values outside it are an error unless ``clip``."""
    low, high = value_range_pair(value_range)
    if clip:
        x = x.clamp(low, high)
    elif lo < low - 1e-6 or hi > high + 1e-6:
        raise InputError(f"values span [{lo:.3g}, {hi:.3g}], outside the range {tuple(value_range)} set by {origin}; "
                         f"pass value_range= for the whole set, or clip=True to clamp into it")
    return (x - low) / (high - low)


def set_range(value_range, clip):
    """Checks the user's (value_range, clip) pair once, when a calculator is made."""
    if value_range is not None:
        value_range_pair(value_range)
    if clip and value_range is None:
        raise InputError("clip=True clamps into value_range; pass value_range=(0, 1) or (0, 255) with it")


def positive_batch_size(batch_size, default):
    """batch_size checked; None (srvp-fd's default) is ``default``: results do not depend on the batch size."""
    if batch_size is None:
        return default
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def batches_of(items):
    """A set given as one array or tensor, or as an iterable of batches, as an iterable of batches."""
    if isinstance(items, (torch.Tensor, np.ndarray)):
        yield items
    else:
        yield from items
