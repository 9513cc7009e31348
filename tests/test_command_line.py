"""The command lines' manners: --help gives each flag's default once, and a bad flag ends in one line
(exit code 2), also for the data converters."""
import re
import subprocess
import sys
import tomllib

import pytest

import example_frechet_distance
from svgvp.data import convert_bair, convert_kth
from svgvp.generate import main as generate_main
from svgvp.metrics import frechet, frechet_video
from svgvp.training import checkpoint
from svgvp.training.loop import main_fp, main_lp
from tests.conftest import MNIST_ROOT, ROOT, make_checkpoint
from tests.test_training import TINY

COMMANDS = {"train_svg_lp.py": main_lp, "train_svg_fp.py": main_fp, "generate_svg_lp.py": generate_main,
            "frechet_distance.py": frechet.main, "svg-fvd": frechet_video.main,
            "svg-checkpoint export": lambda argv: checkpoint.main(["export", *argv]),
            "example_frechet_distance.py": example_frechet_distance.main,
            "svg-convert-bair": convert_bair.main, "svg-convert-kth": convert_kth.main}


def exit_code_and_output(main, argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out = capsys.readouterr()
    return stop.value.code, out.out, out.err


@pytest.mark.parametrize("name", COMMANDS)
def test_help_gives_each_default_once(name, capsys):
    code, out, _ = exit_code_and_output(COMMANDS[name], ["--help"], capsys)
    assert code == 0
    text = " ".join(out.split())  # argparse wraps help over lines
    assert "(default: None)" not in text and "(default: )" not in text, out
    # a flag whose help names its default gets no second one from argparse
    assert not re.search(r"default[^()]*\)\s*\(default:", text), out


@pytest.mark.parametrize("name", COMMANDS)
def test_an_unknown_flag_is_one_line_with_exit_code_2(name, capsys):
    code, _, err = exit_code_and_output(COMMANDS[name], ["--no_such_flag"], capsys)
    assert code == 2
    # argparse names a missing required argument first, else the unknown flag
    assert re.fullmatch(r"error: (the following arguments are required: .*|unrecognized arguments: --no_such_flag)"
                        r" \(see --help\)\n", err), err


def console_script(name, *argv):
    """Run an installed command as pip's console-script wrapper does: sys.exit(<its function>())."""
    with open(f"{ROOT}/pyproject.toml", "rb") as f:
        module, function = tomllib.load(f)["project"]["scripts"][name].split(":")
    code = f"import sys; from {module} import {function}; sys.argv = {[name, *argv]!r}; sys.exit({function}())"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_training_and_evaluation_commands_exit_0_when_they_succeed(tmp_path):
    # their main() returns the run or the summary, which the wrapper would print and turn into exit code 1
    for name in ("svg-train-lp", "svg-train-fp"):
        res = console_script(name, *TINY, "--niter", "1", "--data_root", MNIST_ROOT, "--log_dir", str(tmp_path / name))
        assert res.returncode == 0 and "object at 0x" not in res.stderr, res.stderr[-2000:]
    res = console_script("svg-generate", "--model_path", make_checkpoint(tmp_path / "lp.pth"), "--log_dir",
                         str(tmp_path / "eval"), "--data_root", MNIST_ROOT, "--N", "1", "--nsample", "2",
                         "--n_past", "2", "--n_future", "2", "--no_gifs", "--no_fvd")
    assert res.returncode == 0 and "checkpoint_sha256" not in res.stderr, res.stderr[-2000:]
