"""BAIR robot pushing, from the PNGs written by svgvp/data/convert_bair.py.

Train sequences are drawn at random (sequence k is a pure function of (seed, k)); test sequences
come in a fixed order, each exactly once, with any number of DataLoader workers.
"""
import os

import imageio.v3 as iio
import numpy as np
import torch
from torch.utils.data import Dataset

from svgvp.data import BAIR_FRAMES as FRAMES
from svgvp.data import DataError

TRAIN_LENGTH = 2 ** 62


class RobotPush(Dataset):
    """Sequences of float32 (T, 3, 64, 64) in [0, 1]."""

    def __init__(self, data_root, train=True, seq_len=20, image_size=64, seed=1):
        if image_size != 64:
            raise DataError(f"BAIR frames are 64x64; --image_width {image_size} is not available")
        if not 1 <= seq_len <= FRAMES:
            raise DataError(f"BAIR clips have {FRAMES} recorded frames; {seq_len} frames per sequence were asked for "
                            f"(n_past + n_future, or --n_eval): use at most {FRAMES}")
        self.data_dir = os.path.join(data_root, "processed_data", "train" if train else "test")
        if not os.path.isdir(self.data_dir):
            raise DataError(f"'{self.data_dir}' does not exist; convert the data first: "
                            f"svg-convert-bair --data_dir {data_root}")
        self.dirs = []
        for record in sorted(os.listdir(self.data_dir)):
            rdir = os.path.join(self.data_dir, record)
            if os.path.isdir(rdir):
                # only finished sequences: unfinished ones are still named '<k>.partial'
                ks = sorted((int(k) for k in os.listdir(rdir) if k.isdigit()))
                self.dirs += [os.path.join(rdir, str(k)) for k in ks]
        if not self.dirs:
            raise DataError(f"no converted sequences in '{self.data_dir}'")
        self.train, self.seq_len, self.seed = train, seq_len, seed

    def __len__(self):
        return TRAIN_LENGTH if self.train else len(self.dirs)

    def __getitem__(self, index):
        if self.train:
            d = self.dirs[np.random.default_rng([self.seed, index]).integers(len(self.dirs))]
        else:
            d = self.dirs[index]
        frames = [iio.imread(os.path.join(d, f"{t}.png")) for t in range(self.seq_len)]
        x = np.stack(frames).astype(np.float32) / 255.0                # (T, 64, 64, 3)
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
