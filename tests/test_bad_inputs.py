"""Bad checkpoints and flags end with one line naming the problem, exit code 2, no traceback.

The entry points' main(argv) runs in this process (a fresh interpreter costs seconds per call);
test_scripts_end_in_one_line_as_processes checks that the scripts themselves do the same.
"""
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from svgvp import generate
from svgvp.metrics import frechet
from svgvp.training import checkpoint, loop
from tests.conftest import ROOT, make_checkpoint

pytestmark = pytest.mark.slow  # end-to-end: skipped by the quick run (-m "not slow")

ENTRY_POINTS = {"train_svg_lp.py": lambda argv: loop.main(True, argv), "generate_svg_lp.py": generate.main,
                "frechet_distance.py": frechet.main, "svg-checkpoint": checkpoint.main}


@pytest.fixture
def cli(capsys):
    """Run an entry point's main(argv) here: its exit code and what it printed to stderr."""
    def run(entry, *argv):
        capsys.readouterr()
        try:
            code = ENTRY_POINTS[entry](list(argv))
        except SystemExit as stop:
            code = stop.code
        return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)
    return run


def test_scripts_end_in_one_line_as_processes(tmp_path):
    path = make_checkpoint(tmp_path / "ok.pth")
    for argv, message in ((["train_svg_lp.py", "--data_threads", "-1"], "--data_threads must be 0 or more"),
                          (["generate_svg_lp.py", "--model_path", path, "--log_dir", str(tmp_path / "o"),
                            "--num_threads", "-1"], "--num_threads must be 0 or more")):
        res = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert_one_line(res, message)


def assert_one_line(res, message):
    assert res.returncode == 2, res.stderr[-2000:]
    assert message in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


@pytest.fixture
def trained_run(trained_tiny_runs):
    """The session's tiny one-epoch run: only read here (the tests edit copies of it)."""
    return trained_tiny_runs(1)[0]


def edited_checkpoint(src, dst, edit):
    ckpt = torch.load(src, weights_only=True)
    edit(ckpt)
    torch.save(ckpt, dst)
    return str(dst)


def test_resume_refuses_broken_training_state(trained_run, tmp_path, cli):
    import shutil
    for name, edit, message in [
        ("no_epoch", lambda c: c.pop("epoch"), "no training arguments or epoch count"),
        ("no_args", lambda c: c.pop("args"), "no training arguments or epoch count"),
        ("bad_version", lambda c: c.update(format_version="1"), "format_version of type str"),
        ("str_epoch", lambda c: c.update(epoch="0"), "its epoch is '0', not a whole number"),
        ("nan_epoch", lambda c: c.update(epoch=float("nan")), "its epoch is nan"),
        ("list_args", lambda c: c.update(args=[1, 2]), "its args is a list, not a dict"),
        ("no_step", lambda c: c.pop("step"), "its step is 'missing'"),
        ("bad_lr", lambda c: c["args"].update(lr="abc"), "stores lr='abc', not a valid value of --lr"),
        ("bad_adam", lambda c: c["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)),
         "optimizer state in"),
    ]:
        run_dir = tmp_path / name
        shutil.copytree(trained_run.dir, run_dir)
        edited_checkpoint(trained_run.checkpoint, run_dir / "model.pth", edit)
        assert_one_line(cli("train_svg_lp.py", "--resume", str(run_dir), "--niter", "2"), message)
    assert_one_line(cli("train_svg_lp.py", "--resume", trained_run.dir, "--niter", "2", "--data_threads", "-1"),
                    "--data_threads must be 0 or more")
    assert_one_line(cli("train_svg_lp.py", "--resume", trained_run.dir, "--niter", "2", "--g_dim", "32"),
                    "--g_dim 32 differs from the checkpoint's 16")
    assert_one_line(cli("train_svg_lp.py", "--resume", trained_run.dir, "--niter", "2", "--lr", "0.01"),
                    "--lr cannot change")


def test_model_dir_refuses_damaged_fields_and_export_refuses_what_cannot_be_built(trained_run, tmp_path, cli):
    bad = edited_checkpoint(trained_run.checkpoint, tmp_path / "bad.pth", lambda c: c["args"].update(batch_size=2.5))
    assert_one_line(cli("train_svg_lp.py", "--model_dir", bad, "--niter", "3", "--log_dir", str(tmp_path / "l")),
                    "stores batch_size=2.5")
    nan = edited_checkpoint(trained_run.checkpoint, tmp_path / "nan.pth",
                            lambda c: c["model"]["encoder.c1.main.0.weight"].fill_(float("nan")))
    assert_one_line(cli("svg-checkpoint", "export", nan, str(tmp_path / "out.pth")), "NaN or infinite")
    odd = edited_checkpoint(trained_run.checkpoint, tmp_path / "odd.pth", lambda c: c["config"].update(g_dim=99))
    assert_one_line(cli("svg-checkpoint", "export", odd, str(tmp_path / "out.pth")), "do not form an SVG model")
    assert_one_line(cli("svg-checkpoint", "export", trained_run.checkpoint, str(tmp_path)), "is a directory")
    assert not (tmp_path / "out.pth").exists()


def test_explicit_flag_at_its_default_value_wins_on_resume(trained_run, tmp_path):
    import json
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run.dir, run_dir)   # trained with --data_threads 0; 5 is the parser default
    from svgvp.training import loop as training
    training.main(True, ["--resume", str(run_dir), "--niter", "2", "--data_threads", "5"])
    assert json.load(open(run_dir / "args.json"))["data_threads"] == 5


def test_nan_weights_are_refused_by_generation_and_frechet(tmp_path, cli):
    path = make_checkpoint(tmp_path / "ok.pth")
    nan = edited_checkpoint(path, tmp_path / "nan.pth",
                            lambda c: c["model"]["encoder.c1.main.0.weight"].fill_(float("nan")))
    assert_one_line(cli("generate_svg_lp.py", "--model_path", nan, "--log_dir", str(tmp_path / "out")),
                    "NaN or infinite values (encoder.c1.main.0.weight)")
    res = cli("frechet_distance.py", "--model_path", nan, "--device", "cpu")
    assert_one_line(res, "NaN or infinite")


def test_generation_and_export_flags(tmp_path, cli):
    path = make_checkpoint(tmp_path / "ok.pth")
    assert_one_line(cli("generate_svg_lp.py", "--model_path", path, "--log_dir", str(tmp_path / "o"),
                        "--num_threads", "-1"), "--num_threads must be 0 or more")
    assert_one_line(cli("svg-checkpoint", "export", path, "/proc/forbidden/x.pth"), "cannot write")
    assert_one_line(cli("generate_svg_lp.py", "--model_path", path, "--log_dir", str(tmp_path / "o"),
                        "--device", "cuda:3"), "CUDA is not available")


def test_mnist_torchvision_offline_is_one_line(tmp_path, cli):
    res = cli("train_svg_lp.py", "--mnist_source", "torchvision", "--data_root", str(tmp_path / "d"),
              "--log_dir", str(tmp_path / "logs"), "--batch_size", "2")
    assert_one_line(res, "--mnist_source mnist_wheel")
    assert not (tmp_path / "d").exists()
