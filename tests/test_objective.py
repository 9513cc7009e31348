"""The batched training objective equals the plain 2018 per-step loop: loss, gradients, weights, BN stats."""
import copy

import pytest
import torch

from svgvp.models.svg import SVG, SVGConfig
from tests.reference_2018 import reference_loss

# (backbone, learned_prior, last_frame_skip, skip_from_last_conditioning, Adam steps compared). Several
# steps (the second and third forward on updated weights) are checked once; each other case adds one
# rule (FP's encoding order, a skip rule, vgg's max-pooling and upsampling) that a single step covers,
# loss, gradients and updated weights included. float64 convolutions are slow on CPUs (a vgg step costs
# about 25 s on 2 cores), so the suite pays for extra steps only where they test something.
CASES = [
    ("dcgan", True, False, False, 3),
    ("dcgan", False, False, False, 1),
    ("dcgan", True, True, False, 1),
    ("dcgan", True, False, True, 1),
    # vgg FP adds nothing that the LP vgg case and FP's dcgan case do not test
    pytest.param("vgg", True, False, False, 1, marks=pytest.mark.slow),
]


def tiny(model, learned_prior, last_frame_skip=False, skip_last=False, channels=1):
    torch.manual_seed(0)
    return SVG(SVGConfig(model=model, channels=channels, g_dim=16, z_dim=4, rnn_size=32,
                         learned_prior=learned_prior, last_frame_skip=last_frame_skip,
                         skip_from_last_conditioning=skip_last))


def assert_close(a, b, what, rtol=1e-5, atol=1e-9):
    # Absolute slack scaled to the tensor: conv biases in front of batch norm have a true
    # gradient of 0, so theirs is rounding noise in both paths.
    atol = rtol * b.abs().max().item() + atol
    assert torch.allclose(a, b, rtol=rtol, atol=atol), f"{what}: max diff {(a - b).abs().max().item()}"


@pytest.mark.parametrize("backbone,learned_prior,last_frame_skip,skip_last,steps", CASES)
def test_fast_path_equals_per_step_reference(backbone, learned_prior, last_frame_skip, skip_last, steps):
    # float64: Adam turns the rounding noise of zero-gradient parameters (conv biases before
    # batch norm) into full-size steps in float32, so several steps are compared in float64.
    # The float32 comparison of loss and gradients is test_float32_step_matches_reference.
    fast = tiny(backbone, learned_prior, last_frame_skip, skip_last).double()
    ref = copy.deepcopy(fast)
    opt_fast = torch.optim.Adam(fast.parameters(), lr=2e-3, betas=(0.9, 0.999))
    opt_ref = torch.optim.Adam(ref.parameters(), lr=2e-3, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(1)
    n_past, beta = 3, 1e-4
    for step in range(steps):
        x = torch.rand(2, 5, 1, 64, 64, generator=gen, dtype=torch.float64)
        torch.manual_seed(100 + step)
        mse_f, kld_f = fast(x, n_past)
        torch.manual_seed(100 + step)
        mse_r, kld_r = reference_loss(ref, x, n_past)
        assert_close(mse_f, mse_r, "mse")
        assert_close(kld_f, kld_r, "kld")
        for opt, loss in ((opt_fast, mse_f + beta * kld_f), (opt_ref, mse_r + beta * kld_r)):
            opt.zero_grad()
            loss.backward()
        for (name, pf), pr in zip(fast.named_parameters(), ref.parameters()):
            assert_close(pf.grad, pr.grad, f"grad {name}")
        opt_fast.step()
        opt_ref.step()
    for (name, a), b in zip(fast.state_dict().items(), ref.state_dict().values()):
        if a.is_floating_point():
            assert_close(a, b, f"after {steps} steps: {name}")
        else:
            assert torch.equal(a, b), name


@pytest.mark.parametrize("backbone", ["dcgan", "vgg"])
def test_float32_step_matches_reference(backbone):
    # In float32 both paths round differently (sequence LSTM calls, batched convolutions), and this
    # tiny problem (batch norm over 3 sequences) amplifies rounding ~1e4-fold. So each float32 path is
    # measured against the float64 truth: ours may be at most twice as far from it as the 2018 loop.
    fast = tiny(backbone, True)
    ref = copy.deepcopy(fast)
    truth = copy.deepcopy(fast).double()
    x = torch.rand(3, 4, 1, 64, 64, generator=torch.Generator().manual_seed(2))   # 2 conditioning, 2 predicted
    losses = []
    for model, loss_fn, xx in ((fast, lambda m, x, n: m(x, n), x), (ref, reference_loss, x),
                               (truth, reference_loss, x.double())):
        torch.manual_seed(5)
        mse, kld = loss_fn(model, xx, 2)
        (mse + 1e-4 * kld).backward()
        losses.append((mse.item(), kld.item()))
    (mse_f, kld_f), (mse_r, kld_r), (mse_t, kld_t) = losses
    assert abs(mse_f - mse_t) <= 1e-5 * abs(mse_t)
    # the KL is a sum of small differences of O(1) float32 terms: compare it absolutely
    assert abs(kld_f - kld_t) <= 1e-6 + 2 * abs(kld_r - kld_t)
    for (name, pf), pr, pt in zip(fast.named_parameters(), ref.parameters(), truth.parameters()):
        err_fast = (pf.grad.double() - pt.grad).norm().item()
        err_ref = (pr.grad.double() - pt.grad).norm().item()
        # pre-batch-norm conv biases have a true gradient of 0: theirs is noise in every path
        assert err_fast <= 2 * err_ref + 1e-6, f"grad {name}: {err_fast} vs {err_ref}"
    flat = lambda m: torch.cat([p.grad.double().flatten() for p in m.parameters()])  # noqa: E731
    # the floor, about 8 float32 epsilons of the whole gradient, covers CPUs where the 2018 loop happens
    # to round luckily; a wrong term is orders of magnitude above it
    assert (flat(fast) - flat(truth)).norm() <= 2 * (flat(ref) - flat(truth)).norm() + 1e-6 * flat(truth).norm()


def test_loss_matches_reference_on_fixed_batch_and_seed():
    model = tiny("dcgan", True)
    x = torch.rand(3, 5, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(7)
    mse, kld = model(x, 2)
    torch.manual_seed(7)
    mse_r, kld_r = reference_loss(model, x, 2)
    assert_close(mse, mse_r, "mse")
    assert_close(kld, kld_r, "kld", atol=1e-6)
    # a different seed changes z and therefore the loss: the test can fail
    torch.manual_seed(8)
    assert not torch.allclose(model(x, 2)[1], kld_r)


def test_skip_frame_rules():
    m = tiny("dcgan", True)
    assert [m.skip_frame(i, 5) for i in range(1, 8)] == [0, 1, 2, 3, 3, 3, 3]
    m = tiny("dcgan", True, skip_last=True)
    assert [m.skip_frame(i, 5) for i in range(1, 8)] == [0, 1, 2, 3, 4, 4, 4]
    m = tiny("dcgan", True, last_frame_skip=True)
    assert [m.skip_frame(i, 5) for i in range(1, 8)] == [0, 1, 2, 3, 4, 5, 6]
