"""SVG.sample equals the 2018 per-sample, per-step sampling loop (float64, the same noise)."""
import pytest
import torch

from svgvp.models.svg import SVG, SVGConfig
from tests.reference_2018 import reference_posterior_rollout, reference_sample


def tiny_model(learned_prior, last_frame_skip=False, skip_last=False, bn_train=False):
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32, learned_prior=learned_prior,
                          last_frame_skip=last_frame_skip, skip_from_last_conditioning=skip_last)).double().eval()
    if bn_train:  # generate_svg_lp.py (and --bn_train_mode): batch statistics of each 2018 encoder/decoder call
        model.encoder.train()
        model.decoder.train()
    return model


@pytest.mark.parametrize("learned_prior,last_frame_skip,skip_last,n_past,bn_train", [
    (True, False, False, 3, False), (False, False, False, 3, False), (True, True, False, 3, False),
    (True, False, True, 3, False), (False, True, False, 2, False), (True, False, False, 1, False),
    (True, False, False, 3, True), (False, False, False, 3, True), (True, True, False, 2, True),
])
def test_sample_equals_the_2018_loop(monkeypatch, learned_prior, last_frame_skip, skip_last, n_past, bn_train):
    model = tiny_model(learned_prior, last_frame_skip, skip_last, bn_train)
    B, nsample, n_future = 2, 3, 3
    x = torch.rand(B, n_past + n_future, 1, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    steps_with_noise = range(1, n_past + n_future) if learned_prior else range(n_past, n_past + n_future)
    g = torch.Generator().manual_seed(2)
    # the model's rows are sequence-major (b * nsample + s); one table entry per step that draws
    table = [torch.randn(B * nsample, 4, generator=g, dtype=torch.float64) for _ in steps_with_noise]
    queue = list(table)

    def next_draw(*args, **kwargs):
        return queue.pop(0)
    monkeypatch.setattr(torch, "randn_like", next_draw)
    monkeypatch.setattr(torch, "randn", next_draw)
    ours = model.sample(x, n_past, n_future, nsample=nsample)
    monkeypatch.undo()
    assert not queue, "the model drew a different number of times than the 2018 loop"

    used = {s: 0 for s in range(nsample)}

    def noise(s):
        row = table[used[s]].view(B, nsample, 4)[:, s]
        used[s] += 1
        return row
    ref = reference_sample(model, x, n_past, n_future, nsample, noise)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    assert not torch.equal(ours[:, 0, n_past:], ours[:, 1, n_past:])  # the samples differ: the test can fail


def test_fp_conditioning_uses_the_posterior_mean(monkeypatch):
    """Every draw returns ones: a model that sampled z = mu + sigma during conditioning (instead of the
    posterior mean, as generate_svg_fp.py) would predict another frame than the reference."""
    model = tiny_model(learned_prior=False)
    x = torch.rand(2, 6, 1, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    monkeypatch.setattr(torch, "randn_like", lambda t, *a, **k: torch.ones_like(t))
    monkeypatch.setattr(torch, "randn", lambda *size, **k: torch.ones(*size, dtype=k.get("dtype"), device=k.get("device")))
    ours = model.sample(x, 5, 1, nsample=2)
    monkeypatch.undo()
    ref = reference_sample(model, x, 5, 1, 1, lambda s: torch.ones(2, 4, dtype=torch.float64))
    torch.testing.assert_close(ours[:, 0], ref[:, 0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("learned_prior,last_frame_skip,bn_train", [
    (True, False, False), (False, False, False), (True, True, False), (True, False, True), (False, False, True)])
def test_posterior_rollout_equals_the_2018_loop(learned_prior, last_frame_skip, bn_train):
    model = tiny_model(learned_prior, last_frame_skip, bn_train=bn_train)
    x = torch.rand(3, 7, 1, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ours = model.posterior_rollout(x, 3)
        ref = reference_posterior_rollout(model, x, 3)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(ours[:, 3:], x[:, 3:])  # frames from n_past on are generated
