"""svg-checkpoint export / convert never destroy a run: no self-overwrite, no silent replacement."""
import os

import pytest
import torch

from svgvp.training import checkpoint
from tests.conftest import make_checkpoint


def run_folder(path, seed=0):
    """A run folder as training leaves it: model.pth with optimizer state, args.json."""
    path.mkdir()
    ckpt = torch.load(make_checkpoint(path / "model.pth", seed=seed), weights_only=True)
    ckpt["optimizer"] = {"state": {}, "param_groups": []}
    torch.save(ckpt, path / "model.pth")
    (path / "args.json").write_text("{}")
    return str(path / "model.pth")


def export(capsys, *argv):
    with pytest.raises(SystemExit) as stop:
        checkpoint.main(["export", *argv])
    err = capsys.readouterr().err
    return stop.value.code, err


def test_export_onto_its_own_source_is_refused_and_the_run_keeps_its_optimizer(tmp_path, capsys):
    src = run_folder(tmp_path / "run")
    before = open(src, "rb").read()
    for dst in (src, os.path.join(str(tmp_path), "run", ".", "model.pth")):
        code, err = export(capsys, src, dst, "--force")
        assert code == 2 and "source file itself" in err and len(err.strip().splitlines()) == 1
    os.link(src, tmp_path / "hard.pth")  # the same file under another name
    code, err = export(capsys, src, str(tmp_path / "hard.pth"), "--force")
    assert code == 2 and "source file itself" in err
    assert open(src, "rb").read() == before


def test_export_never_replaces_an_existing_file_without_force_nor_a_run_ever(tmp_path, capsys):
    src = run_folder(tmp_path / "a")
    other_run = run_folder(tmp_path / "b", seed=1)
    other = open(other_run, "rb").read()
    for argv in ([src, other_run], [src, other_run, "--force"]):
        code, err = export(capsys, *argv)
        assert code == 2 and "run's checkpoint" in err
    assert open(other_run, "rb").read() == other
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    code, err = export(capsys, src, str(notes))
    assert code == 2 and "exists" in err and "--force" in err and notes.read_text() == "mine"
    checkpoint.main(["export", src, str(notes), "--force"])  # asked for: replaced
    assert "optimizer" not in checkpoint.load_checkpoint(str(notes))
    fresh = tmp_path / "fresh.pth"
    checkpoint.main(["export", src, str(fresh)])
    assert fresh.exists()
