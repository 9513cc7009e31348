"""Every documented call of srvp-fd 0.4.1 works here the same way, or fails with a message saying what to use."""
import numpy as np
import pytest
import torch

from svgvp.metrics import frechet as fd
from svgvp.metrics.feature_distances import InputError

pytestmark = pytest.mark.filterwarnings("ignore:a set has")


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(20, 1, 64, 64, generator=g), torch.rand(20, 1, 64, 64, generator=g) ** 2


def test_srvp_fd_function_call_with_its_keywords_and_defaults(images):
    a, b = images
    ours = fd.frechet_distance(a, b, dataset="smmnist", device="cpu")
    theirs = fd.frechet_distance(a, b, dataset="mmnist_stochastic", comparison_type="frame", device="cpu",
                                 batch_size=None, sqrt_trace_method="schur")
    assert theirs == pytest.approx(ours, rel=1e-9) and ours > 0


def test_srvp_fd_calculator_calls(images):
    a, b = images
    calc = fd.FrechetDistanceCalculator(dataset="mmnist_stochastic", device="cpu", sqrt_trace_method="svd")
    whole = calc(a, b)
    assert calc(a, b, batch_size=10) == pytest.approx(whole, rel=1e-6)          # a per-call batch size
    assert calc(a, b, comparison_type="frame") == pytest.approx(whole, rel=1e-9)
    f1, f2 = calc.extract_features(a), calc.extract_features(b)
    assert isinstance(f1, np.ndarray) and f1.dtype == np.float64 and f1.shape == (20, 128)  # documented: numpy
    from_tensors = calc.calculate_frechet_distance_from_features(torch.from_numpy(f1).float(), torch.from_numpy(f2))
    assert from_tensors == pytest.approx(whole, rel=1e-5)
    videos = a.view(4, 5, 1, 64, 64)                                             # [B, T, C, H, W]: frames of videos
    assert calc(videos, b.view(4, 5, 1, 64, 64)) == pytest.approx(whole, rel=1e-9)


@pytest.mark.parametrize("call,message", [
    (lambda a, b: fd.frechet_distance(a, b, dataset="smmnist", comparison_type="static_content"),
     "SRVP's static content variable, which SVG does not have; use features='latent\\+skips'"),
    (lambda a, b: fd.FrechetDistanceCalculator(dataset="smmnist")(a, b, comparison_type="dynamics"),
     "SRVP's dynamics variable.*fvd"),
    (lambda a, b: fd.frechet_distance(a, b, dataset="smmnist", comparison_type="motion"), "must be 'frame'"),
    (lambda a, b: fd.frechet_distance(a, b, dataset="smmnist", sqrt_trace_method="sqrtm"), "sqrt_trace_method"),
    (lambda a, b: fd.frechet_distance(a, b, "smmnist"), "pass dataset='smmnist'.*in srvp-fd it is dataset"),
    (lambda a, b: fd.frechet_distance(a, b, "mmnist_stochastic"), "pass dataset='mmnist_stochastic'"),
    (lambda a, b: fd.frechet_distance(a, b, dataset="kth"), "no pretrained SVG model exists for 'kth'"),
    (lambda a, b: fd.frechet_distance(a, b, dataset="mmnist"), "'mmnist_stochastic', srvp-fd's name, is 'smmnist'"),
    (lambda a, b: fd.frechet_distance(a, b, dataset="smmnist", batch_size=0), "positive integer"),
])
def test_srvp_fd_calls_without_an_svg_counterpart_say_what_to_use(images, call, message):
    with pytest.raises(InputError, match=message):
        call(*images)


def test_generator_outputs_a_hair_outside_the_range_can_be_clipped(images):
    a, b = images
    hair = a * 1.0003
    with pytest.raises(InputError, match="outside the range \\(0, 1\\).*clip=True"):
        fd.frechet_distance(hair, b, dataset="smmnist", value_range=(0, 1))
    clipped = fd.frechet_distance(hair, b, dataset="smmnist", value_range=(0, 1), clip=True)
    assert clipped == pytest.approx(fd.frechet_distance(hair.clamp(0, 1), b, dataset="smmnist"), rel=1e-9)
    with pytest.raises(InputError, match="clip=True clamps into value_range"):
        fd.frechet_distance(hair, b, dataset="smmnist", clip=True)
