"""Never lose a run: existing folders are not started over, one writer at a time, stale files cleaned."""
import os

import pytest

from svgvp.training import loop as training
from svgvp.training.run_folder import Run
from tests.test_training import TINY, metrics, run_main

pytestmark = pytest.mark.slow  # end-to-end: skipped by the quick run (-m "not slow")


def snapshot(run):
    return {name: open(os.path.join(run.dir, name), "rb").read()
            for name in ("model.pth", "metrics.jsonl", "args.json", "train.log")}


def test_rerunning_a_command_never_starts_its_run_over(tmp_path, capsys, copy_of_tiny_run):
    run = copy_of_tiny_run()   # as run_main(tmp_path, "--niter", "1") leaves it
    before = snapshot(run)
    with pytest.raises(SystemExit) as exit_info:
        run_main(tmp_path, "--niter", "1", "--seed", "2")  # same folder name, different run
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and f"--resume {run.dir}" in err
    assert snapshot(run) == before
    # a run that fails at start-up does not touch the folder either
    with pytest.raises(SystemExit):
        run_main(tmp_path, "--niter", "1", "--data_root", str(tmp_path / "nowhere"), "--dataset", "bair",
                 "--channels", "3")
    assert snapshot(run) == before
    # and another --name starts a separate run
    other = run_main(tmp_path, "--niter", "1", "--name=-b")
    assert other.dir != run.dir and snapshot(run) == before


def test_model_dir_twice_does_not_overwrite_the_continued_run(capsys, copy_of_tiny_run):
    run = copy_of_tiny_run()
    cont = training.main(True, ["--model_dir", run.dir, "--niter", "2", "--data_threads", "0"])
    before = snapshot(cont)
    with pytest.raises(SystemExit) as exit_info:
        training.main(True, ["--model_dir", run.dir, "--niter", "2", "--data_threads", "0"])
    assert exit_info.value.code == 2 and "already holds a run" in capsys.readouterr().err
    assert snapshot(cont) == before


def test_a_second_process_is_refused_while_the_first_holds_the_folder(capsys, copy_of_tiny_run):
    run = copy_of_tiny_run()
    holder = Run(run.dir)
    holder.lock()  # stands for a live training process
    try:
        with pytest.raises(SystemExit) as exit_info:
            training.main(True, ["--resume", run.dir, "--niter", "2"])
        assert exit_info.value.code == 2
        assert f"another process (pid {os.getpid()})" in capsys.readouterr().err
    finally:
        holder.unlock()
    # the lock file of a process that is gone (pid written, no lock held) does not block
    with open(os.path.join(run.dir, ".lock"), "w") as f:
        f.write("999999")
    resumed = training.main(True, ["--resume", run.dir, "--niter", "2"])
    assert [r["epoch"] for r in metrics(resumed)] == [0, 1]


def test_stale_temporary_files_and_a_cut_metrics_line_are_cleaned_on_resume(copy_of_tiny_run):
    run = copy_of_tiny_run()
    stale = os.path.join(run.dir, ".tmp-abc123model.pth")
    with open(stale, "wb") as f:
        f.write(b"\0" * 1000)  # a checkpoint write killed halfway
    with open(run.metrics, "a") as f:
        f.write('{"epoch": 1, "step": 4, "ms')  # a log line cut by a kill
    resumed = training.main(True, ["--resume", run.dir, "--niter", "2"])
    assert not os.path.exists(stale)
    rows = metrics(resumed)
    assert [r["epoch"] for r in rows] == [0, 1]


def test_divergence_message_is_true_when_no_checkpoint_exists(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(tmp_path, "--niter", "1", "--epoch_size", "20", "--optimizer", "sgd", "--lr", "1e12")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "no checkpoint had been written yet" in err and "model.pth" not in err


def test_args_json_is_written_only_once_the_run_has_started(tmp_path):
    with pytest.raises(SystemExit):
        training.main(True, TINY + ["--log_dir", str(tmp_path / "logs"), "--dataset", "kth",
                                    "--data_root", str(tmp_path / "missing"), "--niter", "1"])
    written = [os.path.join(d, f) for d, _, files in os.walk(tmp_path / "logs") for f in files]
    assert not [p for p in written if not p.endswith(".lock")], written


def test_model_dir_continues_counting_epochs_with_a_fresh_optimizer(copy_of_tiny_run):
    from svgvp.training.checkpoint import load_checkpoint
    run = copy_of_tiny_run()
    assert int(load_checkpoint(run.checkpoint)["optimizer"]["state"][0]["step"]) == 2
    cont = training.main(True, ["--model_dir", run.dir, "--niter", "2", "--data_threads", "0", "--batch_size", "3"])
    ckpt = load_checkpoint(cont.checkpoint)
    assert ckpt["epoch"] == 1 and ckpt["step"] == 4          # epochs and updates go on counting
    assert int(ckpt["optimizer"]["state"][0]["step"]) == 2   # but Adam restarted: 2 steps, not 4
    assert ckpt["args"]["batch_size"] == 3                   # a non-architecture flag may change


def test_tensorboard_events_load_in_tensorboards_own_reader(tmp_path, capsys):
    """The events a run writes, read back by TensorBoard's own reader (its TensorFlow-free build, which
    the run switches TensorBoard to: TensorFlow beside PyTorch in one process has crashed it)."""
    import importlib.util
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(SystemExit) as exit_info:
            run_main(tmp_path, "--niter", "1", "--tensorboard")
        assert exit_info.value.code == 2 and "pip install -e '.[tensorboard]'" in capsys.readouterr().err
        pytest.skip("tensorboard is not installed: only the message was checked")
    run = run_main(tmp_path, "--niter", "2", "--tensorboard")
    from tensorboard.compat import tf   # TensorBoard's TensorFlow, even where this process imported the real one
    assert tf.__name__ == "tensorboard.compat.tensorflow_stub"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(os.path.join(run.dir, "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert sorted(tags["scalars"]) == ["kld", "mse"] and sorted(tags["images"]) == ["reconstructions", "samples"]
    assert [e.step for e in events.Scalars("mse")] == [0, 1]
    assert [round(e.value, 6) for e in events.Scalars("mse")] == [round(r["mse"], 6) for r in metrics(run)]
    assert events.Images("samples")[0].width > 0


def test_plain_runs_draw_their_loss_curve(trained_tiny_runs):
    run, _ = trained_tiny_runs(1)
    assert os.path.getsize(os.path.join(run.dir, "losses.png")) > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="data workers are forked processes on Linux")
def test_data_workers_leave_ctrl_c_and_sigterm_to_the_main_process():
    # Ctrl-C and schedulers signal the whole process group; a worker that died first made the
    # DataLoader's pin-memory thread print a traceback on a GPU. A forked child stands for a worker.
    import signal

    from svgvp.training import run_folder
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run_folder.ignore_stop_signals(0)
            os.kill(os.getpid(), signal.SIGINT)    # Python's default handler would raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)   # the default action would end the process
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
