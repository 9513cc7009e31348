"""Stochastic Moving MNIST (Denton & Fergus 2018), generated on the fly.

Each sequence is a pure function of (seed, index): the same in every run, worker
and process, so training data can be replayed exactly on resume and the test set
is fixed. The motion rules are the 2018 ones.
"""
import numpy as np
import torch
from torch.utils.data import Dataset

from data.mnist_digits import DIGIT_SIZE, load_digits

TEST_SEED = 20180101  # fixed seed of the test set: test sequence k never changes
TEST_LENGTH = 10000   # the 2018 test set length (size of MNIST's test split)
TRAIN_LENGTH = 2 ** 62  # training sequences are drawn by index from an endless stream


class MovingMNIST(Dataset):
    """Sequences of float32 (T, 1, 64, 64) in [0, 1] with ``num_digits`` bouncing digits."""

    def __init__(self, train, data_root, seq_len=20, num_digits=2, image_size=64, deterministic=False,
                 seed=1, mnist_source="auto"):
        if not 1 <= num_digits <= 3:
            raise ValueError(f"num_digits must be 1, 2 or 3, got {num_digits}")
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

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, index])
        size, d = self.image_size, DIGIT_SIZE
        x = np.zeros((self.seq_len, 1, size, size), dtype=np.float32)
        for _ in range(self.num_digits):
            digit = self.digits[rng.integers(len(self.digits))].astype(np.float32) / 255.0
            sx, sy = rng.integers(size - d), rng.integers(size - d)
            dx, dy = rng.integers(-4, 5), rng.integers(-4, 5)
            for t in range(self.seq_len):
                sy, dy, dx = self._wall(sy, dy, dx, size - d, rng)
                sx, dx, dy = self._wall(sx, dx, dy, size - d, rng)
                x[t, 0, sy:sy + d, sx:sx + d] += digit
                sy += dy
                sx += dx
        np.minimum(x, 1.0, out=x)
        return torch.from_numpy(x)
