"""The shipped SM-MNIST SVG-LP model: documented hash and config, measured quality, default FD model."""
import hashlib
import os
import sys

import pytest
import torch

from svgvp.training.checkpoint import load_model
from tests.conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "pretrained_models"))
import check_quality as quality  # noqa: E402

PATH = os.path.join(ROOT, "pretrained_models", "svglp_smmnist2.pth")
README = os.path.join(ROOT, "pretrained_models", "README.md")


@pytest.fixture(scope="module")
def shipped():
    return load_model(PATH)


@pytest.fixture(scope="module")
def test_batch():
    return quality.test_sequences()


def test_file_matches_documented_sha256_and_config(shipped):
    digest = hashlib.sha256(open(PATH, "rb").read()).hexdigest()
    assert digest in open(README).read()
    model, ckpt = shipped
    cfg = model.config
    assert (cfg.model, cfg.image_width, cfg.channels, cfg.g_dim, cfg.z_dim, cfg.rnn_size) == ("dcgan", 64, 1, 128, 10, 256)
    assert cfg.learned_prior and ckpt["args"]["beta"] == 0.0001
    assert (ckpt["args"]["n_past"], ckpt["args"]["n_future"]) == (5, 10) and "optimizer" not in ckpt


@pytest.mark.slow
def test_posterior_reconstruction_far_better_than_initialisation(shipped, test_batch):
    model, ckpt = shipped
    assert quality.reconstruction_mse(model, test_batch) * 5 < quality.reconstruction_mse(
        quality.untrained_like(ckpt), test_batch)


@pytest.mark.slow
def test_prior_samples_above_documented_threshold(shipped, test_batch):
    model, _ = shipped
    assert quality.best_prior_ssim(model, test_batch) > quality.PRIOR_SSIM_THRESHOLD


def test_frechet_distance_uses_it_by_default(tiny_checkpoint):
    from svgvp.metrics import frechet as fd
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(40, 1, 64, 64, generator=g), torch.rand(40, 1, 64, 64, generator=g) ** 2
    by_default = fd.frechet_distance(a, b, device="cpu")
    assert by_default == fd.frechet_distance(a, b, model_path=PATH, device="cpu")
    assert by_default == fd.frechet_distance(a, b, dataset="smmnist", device="cpu")
    assert by_default != pytest.approx(fd.frechet_distance(a, b, model_path=tiny_checkpoint, device="cpu"))
    fd.clear_model_cache()
