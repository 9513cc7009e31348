"""SVG.sample equals the 2018 per-sample, per-step sampling loop (float64, the same noise)."""
import pytest
import torch

from models.svg import SVG, SVGConfig
from reference_2018 import reference_sample


@pytest.mark.parametrize("learned_prior,last_frame_skip,skip_last,n_past", [
    (True, False, False, 3), (False, False, False, 3), (True, True, False, 3), (True, False, True, 3),
    (False, True, False, 2), (True, False, False, 1),
])
def test_sample_equals_the_2018_loop(monkeypatch, learned_prior, last_frame_skip, skip_last, n_past):
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32, learned_prior=learned_prior,
                          last_frame_skip=last_frame_skip, skip_from_last_conditioning=skip_last)).double().eval()
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


def test_fp_conditioning_uses_the_posterior_mean():
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32, learned_prior=False)).eval()
    x = torch.rand(2, 6, 1, 64, 64)
    torch.manual_seed(3)
    a = model.sample(x, 5, 1, nsample=2)
    torch.manual_seed(3)
    b = model.sample(x, 5, 1, nsample=2)
    torch.testing.assert_close(a, b)
    # with no noise before the first prediction, every sample's conditioning state is the same:
    # the samples differ only through N(0, I) at the predicted step
    with torch.no_grad():
        torch.manual_seed(4)
        c = model.sample(x, 5, 1, nsample=2)
    assert not torch.equal(a[:, :, 5], c[:, :, 5])
