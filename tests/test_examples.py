"""The Fréchet example script and the notebook run and show what they claim."""
import os

import nbformat
import pytest
from nbclient import NotebookClient

import example_frechet_distance
from tests.conftest import MNIST_ROOT, ROOT, make_checkpoint

pytestmark = pytest.mark.slow  # end-to-end: skipped by the quick run (-m "not slow")


@pytest.fixture(scope="module")
def trained_like_checkpoint(tmp_path_factory):
    # random weights with batch-norm running statistics: features react to the input
    return make_checkpoint(tmp_path_factory.mktemp("ex") / "m.pth", seed=4)


def test_example_script_refuses_bad_arguments_in_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    cases = [(["--num_sequences", "0"], "--num_sequences must be between 2"),
             (["--num_sequences", "-5"], "--num_sequences must be between 2"),
             (["--num_sequences", "1"], "--num_sequences must be between 2"),
             (["--out_dir", str(tmp_path / "file")], "is a file"),
             (["--out_dir", str(ro / "sub")], "cannot be written")]
    if os.geteuid() == 0:  # root writes anywhere: a read-only folder is no obstacle there
        cases = cases[:-1] + [(["--out_dir", "/proc/forbidden"], "cannot be written")]
    for argv, message in cases:
        with pytest.raises(SystemExit) as stop:
            example_frechet_distance.main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_example_script_writes_its_plots(trained_like_checkpoint, tmp_path):
    out = example_frechet_distance.main(["--model_path", trained_like_checkpoint, "--out_dir", str(tmp_path),
                                         "--num_sequences", "48", "--data_root", MNIST_ROOT])
    for name in ("frechet_distance_example.png", "frechet_distance_vs_noise.png", "frechet_distance_vs_time.png"):
        assert os.path.getsize(tmp_path / name) > 1000
    assert out["by_noise"][0] == pytest.approx(0, abs=1e-10)
    assert out["by_noise"][-1] > out["by_noise"][1]  # more noise, larger distance
    assert out["by_gap"][0] == pytest.approx(0, abs=1e-10) and max(out["by_gap"]) > 0
    assert out["paired"][0] == 0 and out["paired"][-1] > out["paired"][1]  # the paired distance grows


def test_notebook_executes_in_a_real_kernel(trained_like_checkpoint, monkeypatch):
    monkeypatch.setenv("SVG_MODEL_PATH", trained_like_checkpoint)
    monkeypatch.setenv("SVG_DATA_ROOT", MNIST_ROOT)
    # no PYTHONPATH: in examples/, `from frechet_distance import ...` finds examples/frechet_distance.py (a link
    # to the root file) and the installed package, as in a user's notebook there
    nb = nbformat.read(os.path.join(ROOT, "examples", "frechet_distance.ipynb"), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": os.path.join(ROOT, "examples")}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    # the notebook's computed values, against the same computation here
    import re

    import torch

    from svgvp.data.moving_mnist import MovingMNIST
    from svgvp.metrics.frechet import frechet_distance
    shown = float(re.search(r"first vs last frames: ([0-9.eE+-]+)", text).group(1))
    data = MovingMNIST(train=False, data_root=MNIST_ROOT, seq_len=20, num_digits=2)
    videos = torch.stack([data[k] for k in range(128)])
    expected = frechet_distance(videos[:, 0], videos[:, -1], model_path=trained_like_checkpoint, device="cpu")
    assert shown == pytest.approx(expected, rel=1e-5) and expected > 0
    fd_noisy, kid = (float(v) for v in re.search(r"FD ([0-9.eE+-]+), KID ([0-9.eE+-]+)", text).groups())
    assert fd_noisy > 0 and kid > 0
    assert "2560 (16,) (16, 16)" in text  # all 128 x 20 frames, g_dim 16 features
