"""cpu_memory.keep_freed_memory: freed memory is reused without page faults, and CPU training applies it."""
import os
import subprocess
import sys

import pytest

from tests.conftest import MNIST_ROOT, make_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# a training step's pattern in miniature: tensors over glibc's 32 MB mmap threshold, allocated,
# touched and freed together, round after round; prints the minor page faults of the last 3 rounds
# (the heap settles within a few rounds, as training's does)
REALLOCATION_ROUNDS = """
def step():
    tensors = [torch.empty(mb * 2 ** 18).fill_(1.0) for mb in (40, 100, 64, 200)]
    del tensors
for _ in range(8):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""
REALLOCATE = """
import resource, sys
import torch
sys.path.insert(0, {root!r})
from svgvp import cpu_memory
applied = cpu_memory.keep_freed_memory() if sys.argv[1] == "keep" else None
""" + REALLOCATION_ROUNDS + """
print(applied, faults)
"""


def faults(mode):
    out = subprocess.run([sys.executable, "-c", REALLOCATE.format(root=ROOT), mode], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_memory_is_reused_without_page_faults():
    _, default = faults("default")
    applied, kept = faults("keep")
    assert applied == "True"
    # by default every allocation is a fresh mmap: 3 x 404 MB of 4 KiB pages faulted in again
    assert default > 250_000, default
    assert kept < default / 20, (kept, default)


# Run a script's main() in a fresh process, then the reallocation pattern above: its page faults tell
# whether the script left the allocator keeping freed memory (the behaviour, not the call).
AFTER_MAIN = """
import resource, sys
sys.path.insert(0, {root!r})
import torch
import {module} as script
args = sys.argv[1:]
try:
    {call}
except SystemExit:
    pass
""" + REALLOCATION_ROUNDS + """
print(faults)
"""


def faults_after(module, call, args):
    res = subprocess.run([sys.executable, "-c", AFTER_MAIN.format(root=ROOT, module=module, call=call), *args],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    return int(res.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_training_on_the_cpu_keeps_freed_memory_unless_told_not_to(tmp_path):
    tiny = ["--g_dim", "16", "--z_dim", "4", "--rnn_size", "32", "--batch_size", "2", "--epoch_size", "1",
            "--n_past", "2", "--n_future", "1", "--n_eval", "3", "--data_threads", "0",
            "--data_root", MNIST_ROOT, "--niter", "1", "--device", "cpu"]
    kept = faults_after("svgvp.training.loop", "script.main(True, args)", tiny + ["--log_dir", str(tmp_path / "a")])
    default = faults_after("svgvp.training.loop", "script.main(True, args)",
                           tiny + ["--log_dir", str(tmp_path / "b"), "--no-keep_freed_memory"])
    assert os.path.isdir(tmp_path / "a") and os.path.isdir(tmp_path / "b")   # both really trained
    assert default > 250_000 and kept < default / 20, (kept, default)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_generation_on_the_cpu_keeps_freed_memory_unless_told_not_to(tmp_path):
    ckpt = make_checkpoint(tmp_path / "tiny.pth")
    flags = ["--model_path", ckpt, "--data_root", MNIST_ROOT, "--N", "2", "--batch_size", "2", "--nsample", "2",
             "--n_past", "2", "--n_future", "1", "--device", "cpu", "--no_gifs"]
    kept = faults_after("svgvp.generate", "script.main(args)", flags + ["--log_dir", str(tmp_path / "a")])
    default = faults_after("svgvp.generate", "script.main(args)",
                           flags + ["--log_dir", str(tmp_path / "b"), "--no-keep_freed_memory"])
    assert (tmp_path / "a" / "summary.json").exists() and (tmp_path / "b" / "summary.json").exists()
    assert default > 250_000 and kept < default / 20, (kept, default)
