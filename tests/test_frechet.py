"""frechet_distance.py: closed forms, float64 reference, N < d, every bad input, cache, statistics, CLI."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from svgvp.metrics import frechet as fd
from svgvp.pretrained import cached_models
from tests.conftest import ROOT, make_checkpoint


def random_cov(d, rng, cond=10.0):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.linspace(1.0, cond, d)) @ q.T


def sqrtm_reference(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def test_equal_covariances_give_squared_mean_difference():
    rng = np.random.default_rng(0)
    s = random_cov(16, rng)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    assert fd.frechet_distance_from_statistics(mu1, s, mu2, s) == pytest.approx(((mu1 - mu2) ** 2).sum(), rel=1e-9)


def test_agrees_with_float64_sqrtm_on_well_conditioned_covariances():
    rng = np.random.default_rng(1)
    for d in (2, 16, 64):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = random_cov(d, rng), random_cov(d, rng, cond=5)
        ours = fd.frechet_distance_from_statistics(mu1, s1, mu2, s2)
        assert isinstance(ours, float)
        assert ours == pytest.approx(sqrtm_reference(mu1, s1, mu2, s2), rel=1e-8)


def test_one_dimensional_closed_form():
    # two Gaussians N(m1, a^2), N(m2, b^2): (m1 - m2)^2 + (a - b)^2
    assert fd.frechet_distance_from_statistics([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)


def test_identical_sets_give_zero():
    f = np.random.default_rng(2).standard_normal((500, 32))
    assert abs(fd.frechet_distance_from_features(f, f)) < 1e-10
    small = f[:10]  # N < d: the nuclear-norm form
    assert abs(fd.frechet_distance_from_features(small, small)) < 1e-10


def test_fewer_samples_than_dimensions_matches_full_formula():
    rng = np.random.default_rng(3)
    f1, f2 = rng.standard_normal((20, 50)), rng.standard_normal((30, 50)) + 0.3
    nuclear = fd.frechet_distance_from_features(f1, f2)
    full = fd.frechet_distance_from_statistics(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0),
                                               np.cov(f2, rowvar=False))
    assert nuclear == pytest.approx(full, rel=1e-6)


def test_streaming_statistics_equal_numpy():
    rng = np.random.default_rng(4)
    f = rng.standard_normal((1000, 8)) * 3 + 100
    stats = fd.RunningStatistics()
    for k in range(0, 1000, 128):
        stats.update(f[k:k + 128])
    mu, sigma, n = stats.result()
    assert n == 1000
    np.testing.assert_allclose(mu, f.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f, rowvar=False), rtol=1e-9)


def test_kid_is_near_zero_for_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(5)
    a, b, c = rng.standard_normal((300, 8)), rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) + 1
    same, se = fd.kernel_distance_from_features(a, b, num_subsets=20, subset_size=200)
    diff, _ = fd.kernel_distance_from_features(a, c, num_subsets=20, subset_size=200)
    assert abs(same) < 3 * se + 1e-3 and diff > 10 * abs(same) and se > 0


@pytest.fixture
def calc(tiny_checkpoint):
    return fd.FrechetDistanceCalculator(model_path=tiny_checkpoint, device="cpu")


def test_images_distance_is_zero_for_identical_sets_and_grows_with_noise(calc):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(40, 1, 64, 64, generator=g) ** 3
    assert abs(calc(a, a)) < 1e-10
    d1 = calc(a, (a + 0.1 * torch.rand(a.shape, generator=g)).clamp(0, 1))
    d2 = calc(a, (a + 0.5 * torch.rand(a.shape, generator=g)).clamp(0, 1))
    assert 0 < d1 < d2


def test_input_forms_agree(calc):
    a = torch.rand(6, 1, 64, 64)
    f = calc.extract_features(a)
    assert f.dtype == np.float64 and f.shape == (6, 16)
    np.testing.assert_allclose(calc.extract_features(a.numpy()), f, atol=1e-6)
    np.testing.assert_allclose(calc.extract_features(a * 255), f, atol=1e-5)
    u8 = (a * 255).round().to(torch.uint8)
    np.testing.assert_allclose(calc.extract_features(u8), calc.extract_features(u8.float() / 255), atol=1e-6)
    video = a.view(3, 2, 1, 64, 64)
    np.testing.assert_allclose(calc.extract_features(video), f, atol=1e-6)
    np.testing.assert_allclose(calc.extract_features([a[:2], a[2:]]), f, atol=1e-6)
    rgb = calc.extract_features(a.expand(-1, 3, -1, -1))
    np.testing.assert_allclose(rgb, f, atol=1e-5)  # gray -> RGB -> luma is the identity
    big = torch.nn.functional.interpolate(a, size=(128, 128), mode="nearest")
    assert calc.extract_features(big).shape == f.shape  # resized to the encoder's 64x64
    with warnings.catch_warnings():  # a generator's output that still requires grad is read as data, silently
        warnings.simplefilter("error")
        np.testing.assert_allclose(calc.extract_features(a.clone().requires_grad_()), f, atol=1e-6)


@pytest.mark.parametrize("bad,message", [
    (torch.rand(5, 64, 64), "must be \\(N, C, H, W\\)"),
    (torch.rand(0, 1, 64, 64), "empty"),
    (torch.rand(4, 2, 64, 64), "1 or 3 channels"),
    (torch.full((4, 1, 64, 64), float("nan")), "NaN"),
    (torch.full((4, 1, 64, 64), float("inf")), "NaN or infinite"),
    (torch.rand(4, 1, 64, 64) * 1.5, "ambiguous"),
    (torch.rand(4, 1, 64, 64) - 0.5, "outside"),
    (np.array([["a"]] * 4), "numeric"),
    (torch.rand(4, 1, 64, 64) > 0.5, "real numbers"),
    ([[0.5]], "torch tensor or numpy array"),
])
def test_bad_images_raise_clear_errors(calc, bad, message):
    with pytest.raises(fd.InputError, match=message):
        calc(bad, torch.rand(4, 1, 64, 64))


def test_too_few_images_and_small_sets(calc):
    with pytest.raises(fd.InputError, match="at least 2"):
        calc(torch.rand(1, 1, 64, 64), torch.rand(4, 1, 64, 64))
    with pytest.warns(UserWarning, match="not more than the feature dimension"):
        calc(torch.rand(5, 1, 64, 64), torch.rand(5, 1, 64, 64))


def test_forced_value_range(tiny_checkpoint):
    c = fd.FrechetDistanceCalculator(model_path=tiny_checkpoint, device="cpu", value_range=(0, 255))
    x = torch.rand(4, 1, 64, 64) * 1.5  # ambiguous without value_range
    assert c.extract_features(x).shape == (4, 16)


def test_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        fd.frechet_distance(torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64), model_path=str(tmp_path / "x.pth"))
    with pytest.raises(fd.InputError, match="pretrained models exist for: smmnist"):
        fd.frechet_distance(torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64), dataset="ucf101")
    not_svg = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(3)}, not_svg)
    from svgvp.training.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="not an svg checkpoint"):
        fd.frechet_distance(torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64), model_path=str(not_svg))


def test_model_is_loaded_once_and_cache_clears(tiny_checkpoint, monkeypatch):
    from svgvp.training import checkpoint
    calls = []
    real = checkpoint.load_model
    monkeypatch.setattr(checkpoint, "load_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    fd.clear_model_cache()
    a = torch.rand(4, 1, 64, 64)
    for _ in range(3):
        fd.frechet_distance(a, a, model_path=tiny_checkpoint, device="cpu")
    assert len(calls) == 1
    fd.clear_model_cache()
    fd.frechet_distance(a, a, model_path=tiny_checkpoint, device="cpu")
    assert len(calls) == 2


def test_statistics_roundtrip_and_skip_features(calc, tmp_path, tiny_checkpoint):
    a = torch.rand(30, 1, 64, 64)
    mu, sigma, n = calc.compute_statistics(iter([a[:10], a[10:]]))
    assert n == 30 and mu.dtype == np.float64 and sigma.shape == (16, 16)
    path = str(tmp_path / "stats.npz")
    calc.save_statistics(path)
    mu2, sigma2 = fd.load_statistics(path)
    np.testing.assert_array_equal(mu, mu2)
    assert fd.frechet_distance_from_statistics(mu, sigma, mu2, sigma2) == pytest.approx(0, abs=1e-10)
    skips = fd.FrechetDistanceCalculator(model_path=tiny_checkpoint, device="cpu", features="latent+skips")
    assert skips.extract_features(a[:3]).shape == (3, 16 + 64 + 128 + 256 + 512)


@pytest.mark.slow
def test_cli_compares_files_and_saves_stats(tiny_checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.random((20, 1, 64, 64)).astype(np.float32))
    torch.save(torch.rand(20, 1, 64, 64), tmp_path / "b.pt")
    flags = ["--model-path", tiny_checkpoint, "--device", "cpu"]
    # the script as a process once; the other calls go through its main(argv) in this process
    res = subprocess.run([sys.executable, "frechet_distance.py", *flags, str(tmp_path / "a.npy"), str(tmp_path / "b.pt")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    value = float(res.stdout.strip())

    def run(*argv):
        capsys.readouterr()
        try:
            code = fd.main([*flags, *argv])
        except SystemExit as stop:
            code = stop.code
        out = capsys.readouterr()
        return code, out.out, out.err
    code, _, _ = run("--save-stats", str(tmp_path / "a.npy"), str(tmp_path / "a.npz"))
    assert code == 0 and os.path.exists(tmp_path / "a.npz")
    code, out, _ = run(str(tmp_path / "a.npz"), str(tmp_path / "b.pt"))
    assert code == 0 and float(out.strip()) == pytest.approx(value, rel=1e-6)
    code, _, err = run(str(tmp_path / "missing.npy"), str(tmp_path / "b.pt"))
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1
    # --kid: the same Fréchet distance, then KID over subsets, both from one pass of the encoder
    code, out, _ = run("--kid", "--subset-size", "10", "--num-subsets", "5", str(tmp_path / "a.npy"), str(tmp_path / "b.pt"))
    calc = fd.FrechetDistanceCalculator(model_path=tiny_checkpoint, device="cpu")
    mean, error = calc.kernel_distance(np.load(tmp_path / "a.npy"), torch.load(tmp_path / "b.pt"), 5, 10)
    assert code == 0 and float(out.splitlines()[0]) == pytest.approx(value, rel=1e-6)
    assert out.splitlines()[1] == f"KID {mean:.6f} ± {error:.6f} (standard error)"
    code, _, err = run("--kid", str(tmp_path / "a.npz"), str(tmp_path / "b.pt"))
    assert code == 2 and "--kid needs two inputs of images" in err
    code, _, err = run("--num-subsets", "3", str(tmp_path / "a.npy"), str(tmp_path / "b.pt"))
    assert code == 2 and "pass --kid with them" in err
    for argv in (["--kid"], ["--kid", "--save-stats", str(tmp_path / "a.npy"), str(tmp_path / "c.npz")]):
        code, _, err = run(*argv)  # the basic example and --save-stats have no second set to compare
        assert code == 2 and "--kid compares two inputs" in err and not os.path.exists(tmp_path / "c.npz")


def test_import_has_no_side_effects(tmp_path):
    code = ("import os, threading, torch\n"
            "calls = []\n"
            "real = torch.load\n"
            "torch.load = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
            "threads, files = threading.active_count(), set(os.listdir('.'))\n"
            "import frechet_distance\n"
            "assert not calls, 'a model was loaded at import'\n"
            "assert threading.active_count() == threads, 'a thread was started at import'\n"
            "assert set(os.listdir('.')) == files, 'a file was written at import'\n"
            "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.stdout.strip() == "ok", res.stderr[-2000:]


# ----------------------------------------------------------------------------- hard covariances
def _scale(mu1, s1, mu2, s2):
    return np.trace(s1) + np.trace(s2) + ((mu1 - mu2) ** 2).sum()


def test_statistics_route_is_accurate_on_singular_and_badly_scaled_covariances():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((50, 512)) * 1.4           # fewer samples than dimensions: rank 49
    s, mu = np.cov(x, rowvar=False), x.mean(0)
    z = rng.standard_normal((5000, 4)) @ rng.standard_normal((4, 64))   # a 4-dimensional subspace of 64
    s4, mu4 = np.cov(z, rowvar=False), z.mean(0)
    for stats in ((mu, s, mu, s), (mu4, s4, mu4, s4)):
        assert abs(fd.frechet_distance_from_statistics(*stats)) <= 1e-12 * _scale(*stats)
    # columns scaled from 1e-6 to 1e6: exact reference from the features (an N x N singular value problem)
    scales = np.logspace(-6, 6, 64)
    x1 = rng.standard_normal((200, 64)) * scales
    x2 = (rng.standard_normal((200, 64)) * 1.1 + 0.3) * scales
    c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
    ref = (((x1.mean(0) - x2.mean(0)) ** 2).sum() + (c1 ** 2).sum() / 199 + (c2 ** 2).sum() / 199
           - 2 * np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / 199)
    stats = (x1.mean(0), np.cov(x1, rowvar=False), x2.mean(0), np.cov(x2, rowvar=False))
    assert abs(fd.frechet_distance_from_statistics(*stats) - ref) <= 1e-12 * _scale(*stats)


def test_statistics_must_be_covariances():
    rng = np.random.default_rng(8)
    s, mu = random_cov(8, rng), np.zeros(8)
    bad = s.copy()
    bad[0, 1] += 1.0
    with pytest.raises(fd.InputError, match="sigma1 is not symmetric"):
        fd.frechet_distance_from_statistics(mu, bad, mu, s)
    with pytest.raises(fd.InputError, match="sigma2 is not positive semi-definite"):
        fd.frechet_distance_from_statistics(mu, s, mu, s - 2 * np.eye(8))


def test_kid_and_argument_errors_are_the_modules_own():
    rng = np.random.default_rng(9)
    with pytest.raises(fd.InputError, match="same d"):
        fd.kernel_distance_from_features(rng.standard_normal((10, 4)), rng.standard_normal((10, 5)))
    with pytest.raises(fd.InputError, match="num_subsets"):
        fd.kernel_distance_from_features(rng.standard_normal((10, 4)), rng.standard_normal((10, 4)), num_subsets=0)


@pytest.mark.parametrize("kwargs,message", [({"batch_size": 0}, "batch_size"), ({"batch_size": -1}, "batch_size"),
                                            ({"value_range": "x"}, "value_range")])
def test_bad_calculator_arguments(tiny_checkpoint, kwargs, message):
    a = torch.rand(4, 1, 64, 64)
    with pytest.raises(fd.InputError, match=message):
        fd.frechet_distance(a, a, model_path=tiny_checkpoint, device="cpu", **kwargs)


def test_unavailable_device_is_a_value_error(tiny_checkpoint):
    a = torch.rand(4, 1, 64, 64)
    for device in ("cuda", "cuda:7", "foo"):
        with pytest.raises(ValueError, match="device"):
            fd.frechet_distance(a, a, model_path=tiny_checkpoint, device=device)


# ----------------------------------------------------------------------------- one range per set
def test_range_is_decided_once_per_set(calc):
    rng = np.random.default_rng(10)
    a = (rng.random((40, 1, 64, 64)) * 255).astype(np.float32)
    a[20:] *= 0.003          # a dark half: alone, it would look like [0, 1] images
    b = (rng.random((40, 1, 64, 64)) * 200).astype(np.float32)
    whole = calc(a, b)
    as_list = calc([a[:20], a[20:]], [b[:20], b[20:]])
    as_generator = calc((a[k:k + 10] for k in range(0, 40, 10)), iter([b]))
    assert as_list == pytest.approx(whole, rel=1e-9) and as_generator == pytest.approx(whole, rel=1e-9)
    mu, _, _ = calc.compute_statistics([a[:20], a[20:]])
    np.testing.assert_allclose(mu, calc.extract_features(a).mean(0), rtol=1e-9)
    # a set whose first batch implies [0, 1] and a later batch contradicts it is an error, not a new scale
    with pytest.raises(fd.InputError, match="first batch of this set.*batch 1"):
        calc([a[20:], a[:20]], b)


# ----------------------------------------------------------------------------- cache
def test_cache_sees_a_checkpoint_rewritten_in_place(tmp_path):
    path = str(tmp_path / "model.pth")
    a, b = torch.rand(20, 1, 64, 64), torch.rand(20, 1, 64, 64) ** 3
    make_checkpoint(path, seed=0)
    first = fd.frechet_distance(a, b, model_path=path, device="cpu")
    make_checkpoint(path, seed=1)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))  # a later write
    second = fd.frechet_distance(a, b, model_path=path, device="cpu")
    assert second != first
    assert cached_models().count((os.path.abspath(path), "cpu")) == 1


def test_concurrent_cold_cache_loads_the_model_once(tiny_checkpoint, monkeypatch):
    import threading
    import time

    from svgvp.training import checkpoint
    calls = []
    real = checkpoint.load_model

    def slow_load(*a, **k):
        calls.append(1)
        time.sleep(0.3)
        return real(*a, **k)

    monkeypatch.setattr(checkpoint, "load_model", slow_load)
    fd.clear_model_cache()
    threads = [threading.Thread(target=fd.load_encoder, args=(tiny_checkpoint, "cpu")) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


# ----------------------------------------------------------------------------- CLI inputs
@pytest.mark.slow
def test_cli_bad_inputs_end_in_one_line(tiny_checkpoint, tmp_path, capsys):
    import imageio.v3 as iio
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    iio.imwrite(mixed / "a.png", np.zeros((64, 64), np.uint8))
    iio.imwrite(mixed / "b.png", np.zeros((32, 32), np.uint8))
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "a.png").write_text("not an image")
    (tmp_path / "noise.npy").write_bytes(os.urandom(300))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    np.save(tmp_path / "ok.npy", np.random.default_rng(0).random((8, 1, 64, 64)).astype(np.float32))
    cases = [([str(mixed), str(tmp_path / "ok.npy")], "differ in size"),
             ([str(fake), str(tmp_path / "ok.npy")], "not a readable image"),
             ([str(tmp_path / "noise.npy"), str(tmp_path / "ok.npy")], "not a numeric .npy"),
             ([str(tmp_path / "objects.npy"), str(tmp_path / "ok.npy")], "not a numeric .npy"),
             ([str(tmp_path / "module.pt"), str(tmp_path / "ok.npy")], "weights_only=True"),
             (["--batch-size", "0", str(tmp_path / "ok.npy"), str(tmp_path / "ok.npy")], "batch_size")]
    for args, message in cases:  # main(argv) in this process (test_cli_compares_files_and_saves_stats runs the script)
        res = fd_main(capsys, "--model_path", tiny_checkpoint, "--device", "cpu", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def fd_main(capsys, *argv):
    """frechet_distance.py's main(argv) in this process: exit code, stdout, stderr."""
    from types import SimpleNamespace
    capsys.readouterr()
    code = fd.main(list(argv))
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def test_route_switch_and_small_sample_warning_agree_at_n_equal_d(calc, monkeypatch):
    d = calc.feature_dim
    used = []
    from svgvp.metrics import feature_distances
    real = feature_distances.frechet_distance_from_statistics
    monkeypatch.setattr(feature_distances, "frechet_distance_from_statistics",
                        lambda *a: used.append("stats") or real(*a))
    g = torch.Generator().manual_seed(5)
    for n, small in ((d, True), (d + 1, False)):
        used.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            calc(torch.rand(n, 1, 64, 64, generator=g), torch.rand(n, 1, 64, 64, generator=g))
        warned = any("feature dimension" in str(w.message) for w in caught)
        assert warned == small and (not used) == small, (n, warned, used)


def test_statistics_and_features_must_be_real_and_finite(tmp_path):
    mu, eye = np.zeros(4), np.eye(4)
    with pytest.raises(fd.InputError, match="sigma1 must hold real numbers, got dtype complex128"):
        fd.frechet_distance_from_statistics(mu, eye * (1 + 5j), mu, eye)
    with pytest.raises(fd.InputError, match="mu2 must hold real numbers"):
        fd.frechet_distance_from_statistics(mu, eye, np.array(["a"] * 4), eye)
    f = np.random.default_rng(0).random((10, 4))
    bad = f.copy()
    bad[3, 1] = np.nan
    with pytest.raises(fd.InputError, match="NaN"):
        fd.kernel_distance_from_features(bad, f, num_subsets=2, subset_size=5)
    with pytest.raises(fd.InputError, match="NaN"):
        fd.frechet_distance_from_features(f, bad)
    assert np.isfinite(fd.kernel_distance_from_features(f, f, num_subsets=np.int64(5), subset_size=np.int32(5))[0])
    with pytest.raises(fd.InputError, match="num_subsets must be at least 1, got 0"):
        fd.kernel_distance_from_features(f, f, num_subsets=np.int64(0))


def test_cli_bad_statistics_files_odd_arrays_and_mixed_folders(tiny_checkpoint, tmp_path, capsys):
    import imageio.v3 as iio
    rng = np.random.default_rng(0)
    np.save(tmp_path / "ok.npy", rng.random((8, 1, 64, 64)).astype(np.float32))
    np.savez(tmp_path / "complex.npz", mu=np.zeros(16), sigma=np.eye(16) * (1 + 5j))
    (tmp_path / "random.npz").write_bytes(os.urandom(500))
    (tmp_path / "zero.npz").write_bytes(b"")
    np.save(tmp_path / "renamed.npy", np.zeros(3))
    os.rename(tmp_path / "renamed.npy", tmp_path / "renamed.npz")
    np.savez(tmp_path / "strings.npz", mu=np.array(["x"] * 16), sigma=np.eye(16))
    np.savez(tmp_path / "objects.npz", mu=np.array([None] * 16, dtype=object), sigma=np.eye(16))
    np.save(tmp_path / "empty.npy", np.zeros((3, 1, 0, 64), np.float32))
    ok = str(tmp_path / "ok.npy")
    cases = [(["complex.npz", ok], "must hold real numbers, got dtype complex128"),
             (["random.npz", ok], "is not a readable .npz file"), (["zero.npz", ok], "is not a readable .npz file"),
             (["renamed.npz", ok], "holds a single array"), (["strings.npz", ok], "must hold real numbers"),
             (["objects.npz", ok], "'mu' or 'sigma' cannot be read"), (["empty.npy", ok], "zero height or width"),
             (["--save-stats", ok, "ok2.npy"], "name the output '<name>.npz'"),
             (["--save-stats", "complex.npz", "out.npz"], "already holds statistics")]
    for args, message in cases:
        args = [a if a.startswith("-") or os.path.isabs(a) else str(tmp_path / a) for a in args]
        res = fd_main(capsys, "--model_path", tiny_checkpoint, "--device", "cpu", *args)
        assert res.returncode == 2 and message in res.stderr, (args, res.stderr)
    folder = tmp_path / "mixed"
    folder.mkdir()
    iio.imwrite(folder / "a.png", rng.integers(0, 256, (64, 64), dtype=np.uint8))            # gray
    iio.imwrite(folder / "b.png", rng.integers(0, 256, (64, 64, 2), dtype=np.uint8))         # gray + alpha
    iio.imwrite(folder / "c.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))         # RGB
    iio.imwrite(folder / "d.ppm", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    big_endian = rng.random((8, 1, 64, 64)).astype(">f4")
    np.save(tmp_path / "big.npy", big_endian)
    res = fd_main(capsys, "--model_path", tiny_checkpoint, "--device", "cpu", str(folder), str(tmp_path / "big.npy"))
    assert res.returncode == 0 and float(res.stdout.strip().splitlines()[-1]) > 0, res.stderr
    loaded = fd.load_image_folder(str(folder))
    assert loaded.shape == (4, 3, 64, 64)
    calc = fd.FrechetDistanceCalculator(model_path=tiny_checkpoint, device="cpu")
    assert np.array_equal(calc.extract_features(big_endian), calc.extract_features(big_endian.astype("<f4")))


def test_features_are_full_float32_whatever_the_callers_tf32_flags(tiny_checkpoint):
    # a caller (or PyTorch's default for cuDNN) may allow TF32; feature extraction pins full float32 for
    # its own calls and gives the caller's settings back
    from svgvp.metrics.frechet_video import FVDCalculator
    from svgvp.models.i3d import InceptionI3d
    seen = []
    record = lambda module, inputs: seen.append((torch.backends.cuda.matmul.allow_tf32,  # noqa: E731
                                                 torch.backends.cudnn.allow_tf32))
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        calc = fd.FrechetDistanceCalculator(model_path=tiny_checkpoint, device="cpu")
        handle = calc.encoder.register_forward_pre_hook(record)
        images = torch.rand(6, 1, 64, 64, generator=torch.Generator().manual_seed(0))
        with_tf32_asked = calc.extract_features(images)
        handle.remove()
        i3d = InceptionI3d().eval()
        i3d.register_forward_pre_hook(record)
        FVDCalculator(model=i3d, device="cpu").extract_features(torch.rand(2, 9, 3, 16, 16))
        assert seen and all(flags == (False, False) for flags in seen), seen
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        np.testing.assert_array_equal(calc.extract_features(images), with_tf32_asked)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_a_train_mode_model_is_never_changed_by_feature_extraction_even_from_threads():
    from svgvp.models.svg import SVG, SVGConfig
    from tests.conftest import run_in_threads
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    model(torch.rand(4, 3, 1, 64, 64), 1)[0].detach()  # a training step's forward: batch norm buffers move
    model.train()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    calc = fd.FrechetDistanceCalculator(model=model, device="cpu")
    images = torch.rand(2, 16, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = calc.distance(images[0], images[1])
    results, errors = run_in_threads(lambda: [calc.distance(images[0], images[1]) for _ in range(3)], 4)
    assert not errors and len(results) == 4
    assert all(r == expected for rs in results for r in rs)
    assert model.training and model.encoder.training
    assert all(torch.equal(v, buffers[k]) for k, v in model.state_dict().items())


def test_a_model_path_and_a_dataset_together_are_refused_never_one_dropped(tiny_checkpoint, capsys):
    images = torch.rand(4, 1, 64, 64)
    with pytest.raises(fd.InputError, match="both model_path=.* and dataset="):
        fd.frechet_distance(images, images, model_path=tiny_checkpoint, dataset="mmnist_stochastic")
    assert fd.main(["--model-path", tiny_checkpoint, "--dataset", "smmnist", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "pass only model_path" in err and len(err.strip().splitlines()) == 1


def test_kid_standard_error_is_undefined_when_subsets_cannot_differ():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 4)), rng.standard_normal((40, 4)) + 0.5
    with pytest.warns(UserWarning, match="standard error is undefined: every subset is the whole"):
        value, se = fd.kernel_distance_from_features(a, b, num_subsets=10, subset_size=1000)
    assert np.isfinite(value) and np.isnan(se)
    with pytest.warns(UserWarning, match="there is one subset"):
        assert np.isnan(fd.kernel_distance_from_features(a, b, num_subsets=1, subset_size=20)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, se = fd.kernel_distance_from_features(a, b, num_subsets=10, subset_size=20)
    assert se > 0


@pytest.mark.parametrize("seed", [-1, "a", 1.5, True])
def test_kid_seed_must_be_a_whole_number(seed):
    f = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(fd.InputError, match="seed must be a whole number"):
        fd.kernel_distance_from_features(f, f, num_subsets=2, subset_size=5, seed=seed)


def test_features_of_dimension_zero_are_one_clear_error():
    empty = np.zeros((10, 0))
    for call in (lambda: fd.frechet_distance_from_features(empty, empty),
                 lambda: fd.kernel_distance_from_features(empty, empty, num_subsets=2, subset_size=5),
                 lambda: fd.frechet_distance_from_statistics(np.zeros(0), np.zeros((0, 0)), np.zeros(0),
                                                             np.zeros((0, 0)))):
        with pytest.raises(fd.InputError, match="dimension 0"):
            call()


def test_rounding_below_zero_is_reported_as_zero_and_a_real_negative_value_raises(monkeypatch):
    # identical frames (srvp-fd's own test expects a non-negative float)
    f = np.random.default_rng(0).standard_normal((50, 8))
    for value in (fd.frechet_distance_from_features(f, f),
                  fd.frechet_distance_from_statistics(f.mean(0), np.cov(f, rowvar=False), f.mean(0),
                                                      np.cov(f, rowvar=False))):
        assert isinstance(value, float) and value >= 0.0
    from svgvp.metrics import feature_distances
    assert feature_distances._non_negative(-1e-17, 1.0) == 0.0
    with pytest.raises(RuntimeError, match="bug"):
        feature_distances._non_negative(-1e-3, 1.0)


def test_save_stats_output_is_checked_before_any_feature_is_computed(tiny_checkpoint, tmp_path, capsys,
                                                                    monkeypatch):
    np.save(tmp_path / "real.npy", np.random.default_rng(0).random((4, 1, 64, 64)).astype(np.float32))
    (tmp_path / "dir.npz").mkdir()
    monkeypatch.setattr(fd.FrechetDistanceCalculator, "compute_statistics",
                        lambda *a: pytest.fail("features were computed before the output was checked"))
    for target, message in ((tmp_path / "dir.npz", "is a directory"), (tmp_path / "no" / "s.npz", "does not exist")):
        assert fd.main(["--model-path", tiny_checkpoint, "--device", "cpu", "--save-stats", str(tmp_path / "real.npy"),
                        str(target)]) == 2
        assert message in capsys.readouterr().err
