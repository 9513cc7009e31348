"""BAIR and KTH end to end on fixtures in the real formats: TFRecords written by TensorFlow, AVI by ffmpeg."""
import importlib.util
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from svgvp.data import DataError
from svgvp.data import convert_bair as bair_converter
from svgvp.training import loop as training
from tests.conftest import ROOT, assert_weights_changed

pytestmark = pytest.mark.slow  # end-to-end: skipped by the quick run (-m "not slow")

# TensorFlow is looked for, never imported here: TensorFlow and PyTorch in one process can crash.
if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed (pip install -e '.[test]')", allow_module_level=True)


class TensorFlowWorker:
    """tests/tensorflow_worker.py as a subprocess: TensorFlow imported once for the module's record
    files and conversions."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "tensorflow_worker.py")],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the TensorFlow worker died (exit code {self.process.wait()})"
        return SimpleNamespace(**json.loads(answer))

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def tensorflow_worker():
    worker = TensorFlowWorker()
    yield worker
    worker.close()


def bair_records(worker, *groups):
    """Write TFRecords (see tests/bair_fixture.py), each group (root, spec, ...) in its root; returns each
    root's true frames."""
    assert worker.ask({"write": [[str(a) for a in group] for group in groups]}).returncode == 0
    truths = []
    for root, *_ in groups:
        with np.load(os.path.join(root, "truth.npz")) as f:
            truths.append({tuple(k.split("/")): f[k] for k in f.files})
    return truths


def convert_bair(root):
    """The converter's command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "svgvp.data.convert_bair", "--data_dir", str(root)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def convert_in_worker(worker, root):
    """The converter's main(argv) in the module's TensorFlow process (TensorFlow is imported once for the
    module): exit code and stderr, as convert_bair's."""
    return worker.ask({"convert": ["--data_dir", str(root)]})


@pytest.fixture(scope="module")
def bair_sources(tmp_path_factory, tensorflow_worker):
    """The module's record files: the converted set, one good record file (beside which a test puts
    broken ones) and one file of two records (which a test cuts)."""
    roots = {name: tmp_path_factory.mktemp(name) for name in ("bair", "good", "two_records")}
    truths = bair_records(tensorflow_worker,
                          (roots["bair"], "train:traj_0_to_1:2", "train:traj_2_to_3:2", "test:traj_0_to_1:2",
                           "test:traj_2_to_3:2"), (roots["good"], "train:good:1"),
                          (roots["two_records"], "train:traj_0_to_1:2"))
    return roots, truths[0]


def copy_of(bair_sources, name, tmp_path):
    """Copy a source root's record files into tmp_path, which the test may break."""
    import shutil
    shutil.copytree(bair_sources[0][name] / "softmotion30_44k", tmp_path / "softmotion30_44k")


@pytest.fixture(scope="module")
def bair_dir(bair_sources, tensorflow_worker):
    roots, truth = bair_sources
    res = convert_in_worker(tensorflow_worker, roots["bair"])
    assert res.returncode == 0, res.stderr
    return roots["bair"], truth


def test_bair_pixels_round_trip_exactly(bair_dir):
    root, truth = bair_dir
    png = iio.imread(root / "processed_data" / "test" / "traj_2_to_3" / "1" / "29.png")
    assert np.array_equal(png, truth[("test", "traj_2_to_3")][1][29])
    from svgvp.data.bair import RobotPush
    test = RobotPush(str(root), train=False, seq_len=30)
    assert len(test) == 4
    x = test[3]
    assert x.shape == (30, 3, 64, 64) and x.dtype == torch.float32
    assert torch.equal((x * 255).round().to(torch.uint8).permute(0, 2, 3, 1),
                       torch.from_numpy(truth[("test", "traj_2_to_3")][1]))
    # fixed order, each exactly once, with several workers
    loaded = torch.cat(list(DataLoader(test, batch_size=1, num_workers=2)))
    assert torch.equal(loaded, torch.stack([test[k] for k in range(4)]))
    train = RobotPush(str(root), train=True, seq_len=12, seed=1)
    assert torch.equal(train[5], train[5])


def test_bair_rerun_skips_and_ignores_partial_sequences(bair_dir, tmp_path, tensorflow_worker):
    root, _ = bair_dir
    seq = root / "processed_data" / "train" / "traj_0_to_1" / "0"
    stamp = os.path.getmtime(seq / "0.png")
    import shutil
    done = root / "processed_data" / "train" / "traj_0_to_1" / "1"
    partial = root / "processed_data" / "train" / "traj_0_to_1" / "1.partial"
    shutil.move(done, partial)  # what a run interrupted while writing sequence 1 leaves
    os.remove(partial / "29.png")
    from svgvp.data.bair import RobotPush
    assert len(RobotPush(str(root), train=True).dirs) == 3
    assert convert_in_worker(tensorflow_worker, root).returncode == 0
    assert os.path.getmtime(seq / "0.png") == stamp and not partial.exists()
    assert (done / "29.png").exists() and len(RobotPush(str(root), train=True).dirs) == 4


def no_tensorflow():
    raise AssertionError("TensorFlow was imported before the folder checks")


def test_bair_corrupt_record_and_missing_folder(bair_sources, tmp_path, capsys, monkeypatch, tensorflow_worker):
    copy_of(bair_sources, "good", tmp_path)
    (tmp_path / "softmotion30_44k" / "train" / "bad.tfrecords").write_bytes(b"\x00garbage" * 50)
    (tmp_path / "softmotion30_44k" / "train" / "empty.tfrecords").write_bytes(b"")
    res = convert_in_worker(tensorflow_worker, tmp_path)
    assert res.returncode == 1 and "bad.tfrecords" in res.stderr
    assert "empty.tfrecords: empty file (0 bytes)" in res.stderr
    assert (tmp_path / "processed_data" / "train" / "good" / "0" / "29.png").exists()
    # a wrong folder is said before TensorFlow is imported: main(argv) in this (PyTorch) process
    capsys.readouterr()
    monkeypatch.setattr(bair_converter, "import_tensorflow", no_tensorflow)
    assert bair_converter.main(["--data_dir", str(tmp_path / "nope")]) == 2
    assert "download_bair.sh" in capsys.readouterr().err


def test_bair_file_cut_on_a_record_boundary_fails_by_name_and_is_retried(bair_sources, tmp_path, tensorflow_worker):
    copy_of(bair_sources, "two_records", tmp_path)
    path = tmp_path / "softmotion30_44k" / "train" / "traj_0_to_1.tfrecords"
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])   # two equal records: the cut falls on the boundary
    out = tmp_path / "processed_data" / "train" / "traj_0_to_1"
    for _ in range(2):  # no finished mark is left: a second run reports it again
        res = convert_in_worker(tensorflow_worker, tmp_path)
        assert res.returncode == 1 and "traj_0_to_1.tfrecords: holds 1 records but its name states 2" in res.stderr
        assert not out.exists()
    path.write_bytes(whole)  # downloaded again: converted in full
    assert convert_in_worker(tensorflow_worker, tmp_path).returncode == 0 and (out / "1" / "29.png").exists()


def test_bair_without_record_files_is_an_error_and_clips_fit_the_30_frames(tmp_path, bair_dir, capsys, monkeypatch):
    (tmp_path / "softmotion30_44k" / "train").mkdir(parents=True)
    capsys.readouterr()
    monkeypatch.setattr(bair_converter, "import_tensorflow", no_tensorflow)
    assert bair_converter.main(["--data_dir", str(tmp_path)]) == 2
    assert "holds no train/ or test/ .tfrecords" in capsys.readouterr().err
    res = convert_bair(tmp_path)  # the same as a user's process: one line, exit code 2
    assert res.returncode == 2 and "holds no train/ or test/ .tfrecords" in res.stderr and "Traceback" not in res.stderr
    root, _ = bair_dir
    for flags in (["--n_eval", "40"], ["--n_past", "20", "--n_future", "20"]):
        with pytest.raises(SystemExit) as stop:
            training.main(True, ["--dataset", "bair", "--channels", "3", "--data_root", str(root),
                                 "--log_dir", str(tmp_path / "logs"), *flags])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "Traceback" not in err, err
        assert "BAIR clips have 30 recorded frames" in err
    assert not (tmp_path / "logs").exists()  # a failed start leaves nothing behind


def test_bair_training_step_with_paper_settings(bair_dir, tmp_path):
    root, _ = bair_dir
    run = training.main(True, ["--dataset", "bair", "--model", "vgg", "--g_dim", "128", "--z_dim", "64",
                               "--beta", "0.0001", "--n_past", "2", "--n_future", "10", "--channels", "3",
                               "--data_root", str(root), "--log_dir", str(tmp_path), "--batch_size", "2",
                               "--epoch_size", "1", "--niter", "1", "--n_eval", "3", "--data_threads", "0"])
    assert json.loads(open(run.metrics).readline())["mse"] > 0
    assert_weights_changed(run.dir)


def write_avi(path, n_frames, seed):
    import imageio_ffmpeg
    rng = np.random.default_rng(seed)
    w = imageio_ffmpeg.write_frames(str(path), (160, 120), pix_fmt_in="gray", pix_fmt_out="yuvj420p",
                                    codec="mjpeg", fps=25, macro_block_size=1)
    w.send(None)
    base = rng.integers(0, 256, (120, 160)).astype(np.uint8)
    for i in range(n_frames):
        w.send(np.roll(base, 3 * i, axis=1).tobytes())
    w.close()


@pytest.fixture(scope="module")
def kth_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("kth")
    for c in ("boxing", "walking"):
        os.makedirs(root / "raw" / c)
        for person, d in ((1, 1), (2, 1), (22, 1)):
            write_avi(root / "raw" / c / f"person{person:02d}_{c}_d{d}_uncomp.avi", 30, person)
    (root / "00sequences.txt").write_text("person01_boxing_d1\t\tframes\t1-12, 13-30\n")
    from svgvp.data.convert_kth import main
    for size in ("64", "128"):
        assert main(["--data_dir", str(root), "--image_size", size]) == 0
    return root


def test_kth_odd_annotation_bytes_and_a_folder_named_like_a_video(tmp_path):
    os.makedirs(tmp_path / "raw" / "boxing" / "person03_boxing_d1_uncomp.avi")   # a folder, not a video
    write_avi(tmp_path / "raw" / "boxing" / "person01_boxing_d1_uncomp.avi", 20, 1)
    (tmp_path / "00sequences.txt").write_bytes(b"person01_boxing_d1\t\tframes\t1-10, 11-20 \xff\n")
    from svgvp.data.convert_kth import main
    assert main(["--data_dir", str(tmp_path), "--image_size", "64"]) == 0
    assert (tmp_path / "processed" / "boxing" / "person01_boxing_d1").is_dir()


def test_kth_conversion_split_and_loading(kth_dir):
    proc = kth_dir / "processed"
    frames = sorted(os.listdir(proc / "boxing" / "person01_boxing_d1"))
    assert "image-001_64x64.png" in frames and "image-001_128x128.png" in frames
    assert iio.imread(proc / "boxing" / "person01_boxing_d1" / "image-001_128x128.png").shape == (128, 128)
    train = json.load(open(proc / "train_meta64x64.json"))
    test = json.load(open(proc / "test_meta64x64.json"))
    assert {v["person"] for v in train} == {1, 2} and {v["person"] for v in test} == {22}
    annotated = next(v for v in train if v["vid"] == "person01_boxing_d1")
    assert annotated["segments"] == [[1, 12], [13, 30]] and annotated["n_frames"] == 30
    from svgvp.data.kth import KTH
    ds = KTH(str(kth_dir), train=True, seq_len=20, image_size=64)
    x = ds[0]
    assert x.shape == (20, 1, 64, 64) and 0 <= x.min() and x.max() <= 1
    assert torch.equal(ds[7], ds[7])
    test_ds = KTH(str(kth_dir), train=False, seq_len=20, image_size=128)
    assert len(test_ds) == 2 and test_ds[1].shape == (20, 1, 128, 128)
    assert torch.equal(test_ds[1], KTH(str(kth_dir), train=False, seq_len=20, image_size=128)[1])


def test_kth_corrupt_video_and_missing_folder(tmp_path):
    os.makedirs(tmp_path / "raw" / "running")
    write_avi(tmp_path / "raw" / "running" / "person03_running_d2_uncomp.avi", 5, 0)
    (tmp_path / "raw" / "running" / "person04_running_d1_uncomp.avi").write_bytes(b"RIFF....AVI garbage")
    res = subprocess.run([sys.executable, "-m", "svgvp.data.convert_kth", "--data_dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "person04_running_d1_uncomp.avi" in res.stderr
    assert (tmp_path / "processed" / "running" / "person03_running_d2" / "image-005_64x64.png").exists()
    assert not (tmp_path / "processed" / "running" / "person04_running_d1").exists()
    res = subprocess.run([sys.executable, "-m", "svgvp.data.convert_kth", "--data_dir", str(tmp_path / "nope")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "download_kth.sh" in res.stderr
    with pytest.raises(DataError, match="svg-convert-kth"):
        from svgvp.data.kth import KTH
        KTH(str(tmp_path / "nope"))


def test_kth_training_step_with_paper_settings(kth_dir, tmp_path):
    run = training.main(False, ["--dataset", "kth", "--image_width", "64", "--model", "vgg", "--g_dim", "128",
                                "--z_dim", "24", "--beta", "0.000001", "--n_past", "10", "--n_future", "10",
                                "--channels", "1", "--lr", "0.0008", "--data_root", str(kth_dir),
                                "--log_dir", str(tmp_path), "--batch_size", "2", "--epoch_size", "1", "--niter", "1",
                                "--n_eval", "11", "--data_threads", "0"])
    assert json.loads(open(run.metrics).readline())["mse"] > 0
    assert_weights_changed(run.dir)


def test_kth_128_training_step(kth_dir, tmp_path):
    run = training.main(True, ["--dataset", "kth", "--image_width", "128", "--model", "dcgan", "--g_dim", "16",
                               "--z_dim", "4", "--rnn_size", "32", "--n_past", "2", "--n_future", "2",
                               "--data_root", str(kth_dir), "--log_dir", str(tmp_path), "--batch_size", "2",
                               "--epoch_size", "1", "--niter", "1", "--n_eval", "4", "--data_threads", "0"])
    assert json.loads(open(run.metrics).readline())["mse"] > 0
    assert_weights_changed(run.dir)


def test_download_scripts_fail_clearly(tmp_path):
    res = subprocess.run(["bash", "svgvp/data/download_bair.sh"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "usage" in res.stderr
    env = dict(os.environ, BAIR_URL="http://127.0.0.1:9/none.tar", KTH_URL="http://127.0.0.1:9")
    res = subprocess.run(["bash", "svgvp/data/download_bair.sh", str(tmp_path / "b")], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 1 and "failed" in res.stderr
    assert os.listdir(tmp_path / "b") == []  # nothing half-unpacked left behind
    res = subprocess.run(["bash", "svgvp/data/download_kth.sh", str(tmp_path / "k")], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 1 and not os.path.exists(tmp_path / "k" / "raw" / "boxing")


def test_kth_truncated_upper_case_and_interrupted_second_size(tmp_path):
    from svgvp.data.convert_kth import main
    raw = tmp_path / "raw" / "boxing"
    os.makedirs(raw)
    write_avi(raw / "person01_boxing_d1_uncomp.avi", 60, 1)
    data = (raw / "person01_boxing_d1_uncomp.avi").read_bytes()
    (raw / "person02_boxing_d1_uncomp.avi").write_bytes(data[: len(data) // 2])   # cut in the middle
    write_avi(raw / "PERSON03_BOXING_D1_UNCOMP.AVI", 12, 3)                        # upper-case name
    assert main(["--data_dir", str(tmp_path), "--image_size", "64"]) == 1
    proc = tmp_path / "processed" / "boxing"
    assert not (proc / "person02_boxing_d1").exists()
    assert len([n for n in os.listdir(proc / "person03_boxing_d1") if n.endswith("_64x64.png")]) == 12
    # a run adding 128x128 killed halfway: some frames moved in, no completion marker, a stale partial folder
    video = proc / "person01_boxing_d1"
    for n in ("image-001_128x128.png", "image-002_128x128.png"):
        (video / n).write_bytes(b"half")
    os.makedirs(str(video) + ".partial128")
    assert main(["--data_dir", str(tmp_path), "--image_size", "128"]) == 1   # the truncated video still fails
    frames = [n for n in os.listdir(video) if n.endswith("_128x128.png")]
    assert len(frames) == 60 and iio.imread(video / "image-002_128x128.png").shape == (128, 128)
    assert not os.path.exists(str(video) + ".partial128")
    meta = json.load(open(tmp_path / "processed" / "train_meta128x128.json"))
    assert {v["vid"]: v["n_frames"] for v in meta} == {"person01_boxing_d1": 60, "person03_boxing_d1": 12}
