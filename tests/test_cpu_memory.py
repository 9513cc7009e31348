"""cpu_memory.keep_freed_memory: freed memory is reused without page faults, and CPU training applies it."""
import os
import subprocess
import sys

import pytest

from tests.conftest import MNIST_ROOT, make_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# a training step's pattern in miniature: tensors over glibc's largest mmap threshold (32 MB), allocated,
# touched and freed together, round after round; faults() counts the minor page faults of the last 3 rounds
# (the heap settles within a few rounds, as training's does). By default each round maps 2 x 52 MB afresh:
# about 80,000 pages of 4 KiB faulted in over 3 rounds.
REALLOCATION_ROUNDS = """
import resource
import torch
def faults():
    def step():
        tensors = [torch.empty(mb * 2 ** 18).fill_(1.0) for mb in (40, 64)]
        del tensors
    for _ in range(8):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""
FAULTED_AFRESH = 60_000   # fewer than a default round's 80,000, far more than a kept heap's


def run_python(code, *args):
    """stdout of `code` run in a fresh interpreter (malloc's settings are per process and cannot be undone)."""
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_memory_is_reused_without_page_faults():
    # one process: malloc's defaults first, then after keep_freed_memory()
    default, applied, kept = run_python(REALLOCATION_ROUNDS + """
from svgvp import cpu_memory
default = faults()
applied = cpu_memory.keep_freed_memory()
print(default, applied, faults())
""")
    assert applied == "True"
    assert int(default) > FAULTED_AFRESH, default
    assert int(kept) < int(default) / 20, (kept, default)


# A script's main(argv) run twice in one fresh process, each time followed by the reallocation pattern above:
# first with --no-keep_freed_memory (malloc must keep its defaults), then plainly (it must keep freed memory).
# The page faults tell what the script left the allocator doing (the behaviour, not the call).
AFTER_MAIN = REALLOCATION_ROUNDS + """
import json, sys
import {module} as script
def main(args):
    try:
        {call}
    except SystemExit as stop:
        assert not stop.code, stop.code
common = json.loads(sys.argv[1])
main(common + ["--log_dir", sys.argv[2], "--no-keep_freed_memory"])
default = faults()
main(common + ["--log_dir", sys.argv[3]])
print(default, faults())
"""


def faults_after(module, call, argv, tmp_path):
    """(faults with --no-keep_freed_memory, faults without it) after main(argv) of `module`."""
    import json
    out = run_python(AFTER_MAIN.format(module=module, call=call), json.dumps(argv), str(tmp_path / "default"),
                     str(tmp_path / "kept"))
    return int(out[-2]), int(out[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_training_on_the_cpu_keeps_freed_memory_unless_told_not_to(tmp_path):
    tiny = ["--g_dim", "16", "--z_dim", "4", "--rnn_size", "32", "--batch_size", "2", "--epoch_size", "1",
            "--n_past", "2", "--n_future", "1", "--n_eval", "3", "--data_threads", "0",
            "--data_root", MNIST_ROOT, "--niter", "1", "--device", "cpu"]
    default, kept = faults_after("svgvp.training.loop", "script.main(True, args)", tiny, tmp_path)
    assert os.path.isdir(tmp_path / "default") and os.path.isdir(tmp_path / "kept")   # both really trained
    assert default > FAULTED_AFRESH and kept < default / 20, (kept, default)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_generation_on_the_cpu_keeps_freed_memory_unless_told_not_to(tmp_path):
    ckpt = make_checkpoint(tmp_path / "tiny.pth")
    flags = ["--model_path", ckpt, "--data_root", MNIST_ROOT, "--N", "2", "--batch_size", "2", "--nsample", "2",
             "--n_past", "2", "--n_future", "1", "--device", "cpu", "--no_gifs"]
    default, kept = faults_after("svgvp.generate", "script.main(args)", flags, tmp_path)
    assert (tmp_path / "default" / "summary.json").exists() and (tmp_path / "kept" / "summary.json").exists()
    assert default > FAULTED_AFRESH and kept < default / 20, (kept, default)
