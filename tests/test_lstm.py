"""The sequence call of the LSTMs equals stepping the 2018 cells one step at a time."""
import pytest
import torch

from svgvp.models.lstm import LSTM, GaussianLSTM

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def step_by_step(net, x, state):
    outs = []
    for t in range(x.shape[1]):
        out, state = net(x[:, t], state)
        outs.append(out)
    if isinstance(outs[0], tuple):
        return tuple(torch.stack(o, 1) for o in zip(*outs)), state
    return torch.stack(outs, 1), state


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls,layers", [(LSTM, 2), (GaussianLSTM, 1), (GaussianLSTM, 3)])
def test_sequence_call_equals_per_step_cells_in_float64(cls, layers, device):
    torch.manual_seed(0)
    net = cls(12, 5, 16, layers).double().to(device)
    x = torch.randn(4, 7, 12, dtype=torch.float64, device=device, requires_grad=True)
    # a non-zero initial state, so that the state is really carried in
    state = [(torch.randn(4, 16, dtype=torch.float64, device=device),
              torch.randn(4, 16, dtype=torch.float64, device=device)) for _ in range(layers)]
    out_seq, state_seq = net.forward_sequence(x, state)
    out_ref, state_ref = step_by_step(net, x, state)
    out_seq = out_seq if isinstance(out_seq, tuple) else (out_seq,)
    out_ref = out_ref if isinstance(out_ref, tuple) else (out_ref,)
    for a, b in zip(out_seq, out_ref):
        assert a.shape == b.shape == (4, 7, 5)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for (h, c), (h_r, c_r) in zip(state_seq, state_ref):
        torch.testing.assert_close(h, h_r, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(c, c_r, rtol=1e-12, atol=1e-12)
    # gradients through every parameter and the input
    weights = torch.randn(4, 7, 5, dtype=torch.float64, device=device)
    grads = []
    for outs in (out_seq, out_ref):
        loss = sum((o * weights).sum() for o in outs)
        grads.append(torch.autograd.grad(loss, [x, *net.parameters()], retain_graph=True))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_sequence_call_keeps_the_2018_parameter_names():
    net = LSTM(12, 5, 16, 2)
    assert sorted(net.state_dict()) == sorted(
        ["embed.weight", "embed.bias", "output.0.weight", "output.0.bias"]
        + [f"lstm.{k}.{n}" for k in range(2) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")])
    x = torch.randn(2, 3, 12)
    out, _ = net.forward_sequence(x, net.init_state(2))
    # a change of a cell's parameter changes the sequence output: the call reads the cells' parameters
    with torch.no_grad():
        net.lstm[1].weight_hh.add_(0.1)
    assert not torch.allclose(net.forward_sequence(x, net.init_state(2))[0], out)
