"""KTH actions, from the PNGs and split files written by svgvp/data/convert_kth.py.

Training follows the 2018 sampling: a class, then a video, then a segment long enough, then a
start frame (sequence k is a pure function of (seed, k)). The test set is fixed: one sequence per
test segment long enough, with a start frame drawn once from a fixed seed.
"""
import json
import os

import imageio.v3 as iio
import numpy as np
import torch
from torch.utils.data import Dataset

from svgvp.data import DataError, kth_frame_name

TRAIN_LENGTH = 2 ** 62
TEST_SEED = 20180102


def processed_root(data_root):
    for root in (os.path.join(data_root, "processed"), os.path.join(data_root, "KTH", "processed")):
        if os.path.isdir(root):
            return root
    raise DataError(f"no KTH frames under '{data_root}/processed'; convert the videos first: "
                    f"svg-convert-kth --data_dir {data_root}")


class KTH(Dataset):
    """Sequences of float32 (T, 1, W, W) in [0, 1], W = 64 or 128."""

    def __init__(self, data_root, train=True, seq_len=20, image_size=64, seed=1):
        self.root = processed_root(data_root)
        split = "train" if train else "test"
        meta_path = os.path.join(self.root, f"{split}_meta{image_size}x{image_size}.json")
        if not os.path.isfile(meta_path):
            raise DataError(f"'{meta_path}' is missing; run svg-convert-kth --data_dir {data_root} "
                            f"--image_size {image_size}")
        with open(meta_path) as f:
            self.videos = json.load(f)
        self.train, self.seq_len, self.size, self.seed = train, seq_len, image_size, seed
        self.classes = sorted({v["class"] for v in self.videos})
        self.by_class = {c: [v for v in self.videos if v["class"] == c] for c in self.classes}
        # (video, segment) pairs long enough for seq_len frames
        self.long_enough = [(v, s) for v in self.videos for s in v["segments"] if s[1] - s[0] + 1 >= seq_len]
        if not self.long_enough:
            raise DataError(f"no {split} segment of KTH has {seq_len} frames")

    def __len__(self):
        return TRAIN_LENGTH if self.train else len(self.long_enough)

    def _frames(self, video, first):
        d = os.path.join(self.root, video["class"], video["vid"])
        imgs = [iio.imread(os.path.join(d, kth_frame_name(first + i, self.size)))
                for i in range(self.seq_len)]
        x = np.stack([i if i.ndim == 2 else i[..., 0] for i in imgs]).astype(np.float32) / 255.0
        return torch.from_numpy(x)[:, None]

    def __getitem__(self, index):
        if self.train:
            rng = np.random.default_rng([self.seed, index])
            while True:  # the 2018 rejection sampling: class, video, segment; retry when too short
                videos = self.by_class[self.classes[rng.integers(len(self.classes))]]
                video = videos[rng.integers(len(videos))]
                seg = video["segments"][rng.integers(len(video["segments"]))]
                if seg[1] - seg[0] + 1 >= self.seq_len:
                    break
        else:
            video, seg = self.long_enough[index]
            rng = np.random.default_rng([TEST_SEED, index])
        start = seg[0] + rng.integers(seg[1] - seg[0] + 2 - self.seq_len)
        return self._frames(video, int(start))
