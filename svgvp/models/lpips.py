"""The LPIPS network (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric"), version 0.1, with the AlexNet or VGG16 trunk.

Distance between two images in [-1, 1]: both are shifted and scaled by fixed per-channel constants,
run through the trunk, and its five ReLU outputs ("taps") are taken. Each tap is unit-normalised over
channels at every position (eps 1e-10), the squared difference of the two images' taps is weighted
per channel by a learned non-negative 1x1 head (no bias), averaged over positions, and the five
averages are summed. Dropout before the heads (training only in the original) is left out: it is the
identity at evaluation.

The weights come from ``svgvp/data/lpips_weights.py``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

# the input scaling of the original: (x - shift) / scale per RGB channel, x in [-1, 1]
INPUT_SHIFT = (-0.030, -0.088, -0.188)
INPUT_SCALE = (0.458, 0.448, 0.450)
NORMALISE_EPS = 1e-10

# (out_channels, kernel, stride, padding, max-pool before this conv, tap after its ReLU)
ALEXNET = ((64, 11, 4, 2, False, True), (192, 5, 1, 2, True, True), (384, 3, 1, 1, True, True),
           (256, 3, 1, 1, False, True), (256, 3, 1, 1, False, True))
_VGG_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (channels, convs) between max-pools
VGG16 = tuple((c, 3, 1, 1, stage > 0 and i == 0, i == n - 1)
              for stage, (c, n) in enumerate(_VGG_STAGES) for i in range(n))
TRUNKS = {"alex": ALEXNET, "vgg": VGG16}
POOL = {"alex": (3, 2), "vgg": (2, 2)}  # max-pool (kernel, stride), no padding
# the smallest image side each trunk accepts (every pool needs a window's worth of input)
MIN_SIZE = {"alex": 31, "vgg": 16}


class LPIPSNetwork(nn.Module):
    """LPIPS v0.1 with ``trunk`` "alex" or "vgg": ``forward(x0, x1)`` gives the (N,) distances of images
    (N, 3, H, W) in [-1, 1]; ``taps`` and ``distance_of_taps`` split it, so that one image's taps can be
    compared with many others'."""

    def __init__(self, trunk="alex"):
        super().__init__()
        if trunk not in TRUNKS:
            raise ValueError(f"the LPIPS trunk must be one of {sorted(TRUNKS)}, got {trunk!r}")
        self.trunk = trunk
        in_channels, taps = 3, []
        self.convs = nn.ModuleList()
        for out, kernel, stride, padding, _, tap in TRUNKS[trunk]:
            self.convs.append(nn.Conv2d(in_channels, out, kernel, stride, padding))
            if tap:
                taps.append(out)
            in_channels = out
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in taps)
        self.register_buffer("shift", torch.tensor(INPUT_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(INPUT_SCALE).view(1, 3, 1, 1), persistent=False)

    def taps(self, x):
        """The five unit-normalised trunk outputs of images x (N, 3, H, W) in [-1, 1]."""
        h = (x - self.shift) / self.scale
        kernel, stride = POOL[self.trunk]
        out = []
        for conv, (_, _, _, _, pool_before, tap) in zip(self.convs, TRUNKS[self.trunk]):
            if pool_before:
                h = F.max_pool2d(h, kernel, stride)
            h = F.relu(conv(h))
            if tap:
                norm = torch.sqrt((h * h).sum(1, keepdim=True))
                out.append(h / (norm + NORMALISE_EPS))
        return out

    def distance_of_taps(self, taps0, taps1):
        """Distances from two lists of taps (..., C, H, W) whose leading dimensions broadcast: shape (...)."""
        total = 0
        for head, a, b in zip(self.heads, taps0, taps1):
            d = (a - b) ** 2
            total = total + head(d.reshape(-1, *d.shape[-3:])).mean((2, 3)).reshape(d.shape[:-3])
        return total

    def forward(self, x0, x1):
        return self.distance_of_taps(self.taps(x0), self.taps(x1))
