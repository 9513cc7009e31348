"""Architectures equal the 2018 ones: parameter counts, state-dict names, init, stateless modules."""
import pytest
import torch

from svgvp.models.svg import SVG, SVGConfig


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_dcgan64_parameter_counts_equal_2018():
    m = SVG(SVGConfig(model="dcgan", channels=1, g_dim=128, z_dim=10, rnn_size=256))
    assert count(m.encoder) == 3_805_376
    assert count(m.decoder) == 6_558_529
    assert count(m.frame_predictor) == 1_121_152
    assert count(m.posterior) == 564_500
    assert count(m.prior) == 564_500


def test_vgg64_parameter_counts_equal_2018():
    m = SVG(SVGConfig(model="vgg", channels=3, g_dim=128, z_dim=64, rnn_size=256))
    assert count(m.encoder) == 8_689_600
    assert count(m.decoder) == 11_822_659
    assert count(m.frame_predictor) == 1_134_976
    assert count(m.posterior) == 592_256


@pytest.mark.parametrize("backbone,extra_enc", [
    ("dcgan", 512 * 512 * 16 + 512 + 2 * 512),  # the extra encoder block: dcgan_conv(512, 512)
    ("vgg", None),
])
def test_128_backbones_add_a_block(backbone, extra_enc):
    small = SVG(SVGConfig(model=backbone, image_width=64))
    big = SVG(SVGConfig(model=backbone, image_width=128))
    assert count(big.encoder) > count(small.encoder)
    if extra_enc is not None:
        assert count(big.encoder) - count(small.encoder) == extra_enc
        assert count(big.decoder) > count(small.decoder)
    out = big(torch.rand(2, 3, 1, 128, 128), 2)
    assert all(torch.isfinite(v) for v in out)


def test_state_dict_names_match_2018_modules():
    m = SVG(SVGConfig())
    enc, dec = m.encoder.state_dict(), m.decoder.state_dict()
    assert enc["c1.main.0.weight"].shape == (64, 1, 4, 4)
    assert enc["c5.0.weight"].shape == (128, 512, 4, 4)
    assert dec["upc1.0.weight"].shape == (128, 512, 4, 4)
    assert dec["upc5.0.weight"].shape == (128, 1, 4, 4)
    assert set(m.frame_predictor.state_dict()) >= {"embed.weight", "lstm.0.weight_ih", "lstm.1.weight_hh",
                                                    "output.0.weight"}
    assert set(m.posterior.state_dict()) >= {"embed.weight", "lstm.0.weight_ih", "mu_net.weight",
                                             "logvar_net.weight"}
    v = SVG(SVGConfig(model="vgg", channels=3)).encoder.state_dict()
    assert v["c1.0.main.0.weight"].shape == (64, 3, 3, 3)
    assert v["c4.2.main.1.running_mean"].shape == (512,)


def test_2018_initialisation():
    torch.manual_seed(0)
    m = SVG(SVGConfig(model="vgg"))
    w = m.encoder.c3[1].main[0].weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    assert torch.all(m.encoder.c3[1].main[0].bias == 0)
    bn = m.encoder.c3[1].main[1].weight
    assert abs(bn.mean().item() - 1.0) < 0.01 and 0.01 < bn.std().item() < 0.03
    assert abs(m.frame_predictor.embed.weight.std().item() - 0.02) < 0.002
    # LSTM cells keep PyTorch's default uniform(-1/sqrt(h), 1/sqrt(h)) init
    bound = 1 / 256 ** 0.5
    lw = m.frame_predictor.lstm[0].weight_ih
    assert lw.abs().max() <= bound and lw.std() > 0.5 * bound / 3 ** 0.5


def test_modules_hold_no_state_or_batch_size():
    m = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    m.eval()
    x = torch.rand(3, 6, 1, 64, 64)
    torch.manual_seed(0)
    a = m.sample(x, 3, 3)
    torch.manual_seed(0)
    m.sample(torch.rand(5, 6, 1, 64, 64), 3, 3)  # another batch size in between
    torch.manual_seed(0)
    b = m.sample(x, 3, 3)
    assert torch.equal(a, b)


def test_eval_outputs_do_not_depend_on_the_rest_of_the_batch():
    m = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32)).eval()
    x = torch.rand(4, 6, 1, 64, 64)
    full = m.posterior_rollout(x, 3)
    alone = m.posterior_rollout(x[:1], 3)
    assert torch.allclose(full[:1], alone, atol=1e-5)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="image width 96"):
        SVGConfig(image_width=96)
    with pytest.raises(ValueError, match="z_dim"):
        SVGConfig(z_dim=0)


def test_mixed_precision_keeps_the_recurrent_part_in_float32():
    """Under bfloat16 autocast only the convolutions drop precision: LSTM state, z and the KL stay float32."""
    torch.manual_seed(0)
    model = SVG(SVGConfig(g_dim=16, z_dim=4, rnn_size=32))
    x = torch.rand(4, 5, 1, 64, 64)
    torch.manual_seed(1)
    mse32, kld32 = model(x, 3)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_pred, mu, logvar, mu_p, logvar_p = model.teacher_forced(x, 3)
        torch.manual_seed(1)
        mse16, kld16 = model(x, 3)
    assert x_pred.dtype == torch.bfloat16  # the decoder did run in bfloat16
    assert all(t.dtype == torch.float32 for t in (mu, logvar, mu_p, logvar_p))
    assert mse16.dtype == kld16.dtype == torch.float32
    torch.testing.assert_close(mse16, mse32, rtol=2e-2, atol=0)
    torch.testing.assert_close(kld16, kld32, rtol=5e-2, atol=1e-4)


@pytest.mark.parametrize("model", ["dcgan", "vgg"])
def test_training_graph_makes_no_whole_tensor_copies_for_in_place_activations(model):
    """The in-place LeakyReLU after each batch norm runs on the grouped tensor, not on its reshape (a
    view): on a view, autograd's backward would clone and copy the whole activation (CopySlices)."""
    torch.manual_seed(0)
    net = SVG(SVGConfig(model=model, g_dim=16, z_dim=4, rnn_size=32))
    mse, kld = net(torch.rand(2, 4, 1, 64, 64), 2)
    names, seen, todo = set(), set(), [(mse + kld).grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        todo.extend(f for f, _ in fn.next_functions)
    assert "NativeBatchNormBackward0" in names and "LeakyReluBackward1" in names, names
    assert not {"CopySlices", "AsStridedBackward0"} & names, names
