"""Stochastic Moving MNIST (Denton & Fergus 2018), generated on the fly.

Each sequence is a pure function of (seed, index): the same in every run, worker
and process, so training data can be replayed exactly on resume and the test set
is fixed. The motion rules are the 2018 ones.
"""
import numpy as np
import torch
from torch.utils.data import Dataset

from svgvp.data.mnist_digits import DIGIT_SIZE, load_digits

TEST_SEED = 20180101  # fixed seed of the test set: test sequence k never changes
TEST_LENGTH = 10000   # the 2018 test set length (size of MNIST's test split)
TRAIN_LENGTH = 2 ** 62  # training sequences are drawn by index from an endless stream


class MovingMNIST(Dataset):
    """Sequences of float32 (T, 1, 64, 64) in [0, 1] with ``num_digits`` bouncing digits."""

    def __init__(self, train, data_root, seq_len=20, num_digits=2, image_size=64, deterministic=False,
                 seed=1, mnist_source="auto"):
        if num_digits < 1:
            raise ValueError(f"num_digits must be at least 1, got {num_digits}")
        if image_size <= DIGIT_SIZE:
            raise ValueError(f"image_size must exceed the digit size {DIGIT_SIZE}, got {image_size}")
        self.train = train
        self.seq_len = seq_len
        self.num_digits = num_digits
        self.image_size = image_size
        self.deterministic = deterministic
        self.seed = seed if train else TEST_SEED
        self.digits, self.digit_source = load_digits(data_root, train, mnist_source)

    def __len__(self):
        return TRAIN_LENGTH if self.train else TEST_LENGTH

    def _wall(self, p, dp, dq, limit, rng):
        """The 2018 wall rule along one axis (p: position, dp: its velocity, dq: the other one).

        At a wall the digit is put back inside; deterministic mode reflects dp, stochastic mode
        draws dp pointing away from the wall and a new dq (in this order, as in 2018).
        """
        if p < 0:
            p = 0
            if self.deterministic:
                return p, -dp, dq
            return p, rng.integers(1, 5), rng.integers(-4, 5)
        if p >= limit:
            p = limit - 1
            if self.deterministic:
                return p, -dp, dq
            return p, rng.integers(-4, 0), rng.integers(-4, 5)
        return p, dp, dq

    def trajectory(self, index):
        """The random part of sequence ``index``, drawn exactly as ``__getitem__`` draws it: (digit
        indices (num_digits,), top-left corners (seq_len, num_digits, 2) as (y, x)), int64 arrays."""
        rng = np.random.default_rng([self.seed, index])
        size, d = self.image_size, DIGIT_SIZE
        ids = np.empty(self.num_digits, dtype=np.int64)
        corners = np.empty((self.seq_len, self.num_digits, 2), dtype=np.int64)
        for k in range(self.num_digits):
            ids[k] = rng.integers(len(self.digits))
            sx, sy = rng.integers(size - d), rng.integers(size - d)
            dx, dy = rng.integers(-4, 5), rng.integers(-4, 5)
            for t in range(self.seq_len):
                sy, dy, dx = self._wall(sy, dy, dx, size - d, rng)
                sx, dx, dy = self._wall(sx, dx, dy, size - d, rng)
                corners[t, k] = sy, sx
                sy += dy
                sx += dx
        return ids, corners

    def __getitem__(self, index):
        ids, corners = self.trajectory(index)
        d = DIGIT_SIZE
        x = np.zeros((self.seq_len, 1, self.image_size, self.image_size), dtype=np.float32)
        for k, digit_id in enumerate(ids):  # digit by digit, in the 2018 order of the additions
            digit = self.digits[digit_id].astype(np.float32) / 255.0
            for t, (sy, sx) in enumerate(corners[:, k]):
                x[t, 0, sy:sy + d, sx:sx + d] += digit
        np.minimum(x, 1.0, out=x)
        return torch.from_numpy(x)


class Trajectories(Dataset):
    """A MovingMNIST's sequences as trajectories (digit indices, corners) for rendering on the
    training device: the data workers draw the cheap random part, ``renderer`` draws the frames."""

    def __init__(self, frames):
        self.frames = frames

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, index):
        ids, corners = self.frames.trajectory(index)
        return torch.from_numpy(ids), torch.from_numpy(corners)

    def renderer(self, device):
        """batch of trajectories -> (B, T, 1, S, S) frames on ``device``, equal bit for bit to the
        dataset's own ``__getitem__``; the digit table is copied to the device once."""
        table = torch.from_numpy(self.frames.digits).to(device)
        # the 256 values a digit pixel can take, divided by 255 by numpy exactly as __getitem__ does (a GPU
        # may divide by a scalar as a multiplication by its reciprocal, which rounds differently)
        levels = torch.from_numpy(np.arange(256, dtype=np.uint8).astype(np.float32) / 255.0).to(device)
        size = self.frames.image_size

        def render(batch):
            ids, corners = (t.to(device, non_blocking=True) for t in batch)
            return render_frames(table, levels, ids, corners, size)
        return render


def render_frames(digits, levels, ids, corners, image_size):
    """Frames (B, T, 1, S, S) float32 from a uint8 digit table (N, d, d), the float32 value of each
    pixel level (256,), digit indices (B, K) and top-left corners (B, T, K, 2) as (y, x), on the
    table's device.

    The same float32 operations as ``MovingMNIST.__getitem__``: each digit's pixels become their
    level's value (uint8 / 255) and are added to a zero canvas, digit by digit, then the canvas is
    clipped at 1. Each digit is placed by a gather (no atomics), so the result is exact and
    deterministic on every device.
    """
    B, T, K, _ = corners.shape
    d = digits.shape[-1]
    pos = torch.arange(image_size, device=digits.device)
    canvas = torch.zeros(B, T, image_size, image_size, device=digits.device)
    b = torch.arange(B, device=digits.device)[:, None, None, None]
    for k in range(K):
        patch = levels[digits[ids[:, k]].long()]                                  # (B, d, d)
        rows = pos - corners[:, :, k, 0, None]                                    # (B, T, S): row in the digit
        cols = pos - corners[:, :, k, 1, None]
        inside = ((rows >= 0) & (rows < d))[..., :, None] & ((cols >= 0) & (cols < d))[..., None, :]
        values = patch[b, rows.clamp(0, d - 1)[..., :, None], cols.clamp(0, d - 1)[..., None, :]]
        canvas += torch.where(inside, values, 0.0)
    return canvas.clamp_(max=1.0).unsqueeze(2)
