"""Installed as a user installs it: one import package, usable from a folder full of generic names."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, make_checkpoint

USER_FILES = {  # what a research project's own folder holds; each breaks the import if it is picked up
    "utils.py": "raise ImportError('the user utils.py was imported')\n",
    "metrics.py": "raise ImportError('the user metrics.py was imported')\n",
    "training.py": "raise ImportError('the user training.py was imported')\n",
    "models/__init__.py": "raise ImportError('the user models package was imported')\n",
    "data/__init__.py": "raise ImportError('the user data package was imported')\n",
}

USE = """
import numpy as np, torch
from svgvp.metrics import (FVDCalculator, FrechetDistanceCalculator, InputError, LPIPSCalculator, clear_model_cache,
                           frechet_distance, frechet_distance_from_features, frechet_distance_from_statistics, fvd,
                           kernel_distance_from_features, kvd, load_statistics, lpips, psnr, save_statistics, ssim)
from svgvp.models.svg import SVG, SVGConfig
from svgvp.data import load_dataset
from svgvp.data.moving_mnist import MovingMNIST
from svgvp.training.loop import train
from svgvp.training.settings import parse_args
from svgvp.training.checkpoint import load_model
from svgvp.generate import main
import svgvp.pretrained
g = torch.Generator().manual_seed(0)
a, b = torch.rand(40, 1, 64, 64, generator=g), torch.rand(40, 1, 64, 64, generator=g)
print("fd", frechet_distance(a, b, model_path=MODEL, device="cpu"))
print("lpips", lpips(a[:2], b[:2], device="cpu").tolist())
try:
    frechet_distance(a, b, device="cpu")   # the shipped model: not carried by a non-editable install
except FileNotFoundError as err:
    print("shipped:", err)
"""


@pytest.mark.slow
def test_non_editable_install_is_one_package_that_works_beside_a_users_files(tmp_path):
    # a copy of what the build reads, so that the build writes nothing into the repository
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    shutil.copytree(os.path.join(ROOT, "svgvp"), src / "svgvp", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    # the system's packages (torch, numpy, ...) are reused, so that nothing is downloaded
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    res = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                          str(src)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]

    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dist_info = [d for d in os.listdir(site) if d.startswith("svg-") and d.endswith(".dist-info")]
    assert len(dist_info) == 1, os.listdir(site)
    with open(os.path.join(site, dist_info[0], "RECORD")) as f:
        installed = [line.split(",")[0] for line in f if line.strip()]
    top_level = {path.split("/")[0] for path in installed if not path.startswith("..")}
    assert top_level == {"svgvp", dist_info[0]}, sorted(top_level)
    with open(os.path.join(site, dist_info[0], "entry_points.txt")) as f:
        commands = [line.split("=")[0].strip() for line in f if "=" in line]
    assert commands and all(c.startswith("svg-") for c in commands), commands

    user = tmp_path / "project"
    for name, text in USER_FILES.items():
        (user / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
        (user / name).write_text(text)
    model = make_checkpoint(tmp_path / "tiny.pth")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SVG_PRETRAINED_DIR")}
    res = subprocess.run([py, "-c", f"MODEL = {model!r}\n" + USE], cwd=user, capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert float(lines[0].split()[1]) > 0
    assert lines[1].startswith("lpips [") and "nan" not in lines[1]
    assert "SVG_PRETRAINED_DIR" in lines[2] and "model_path=" in lines[2]
    # the command lines are installed and answer
    res = subprocess.run([str(venv / "bin" / "svg-fd"), "--help"], cwd=user, capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0 and "usage" in res.stdout.lower(), res.stderr[-2000:]
