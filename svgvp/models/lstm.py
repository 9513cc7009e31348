"""The frame-predictor LSTM and the Gaussian LSTM (posterior and prior).

Unlike the 2018 modules these hold no batch size, device or hidden state: the
caller owns the state, ``forward(x, state) -> (out, state)``.

Under mixed precision (``--amp``) these networks run in their parameters' dtype with autocast
off: they are a few percent of the model's FLOPs, and float32 keeps the cell state, which
accumulates over time, and the Gaussian parameters, which feed exp() and the KL term, exact.

Training knows every input of a teacher-forced pass before the networks run, so it calls
``forward_sequence``: the embedding and the heads over all steps at once, and the stacked cells as
one recurrent call (cuDNN on a GPU). Sampling is autoregressive and steps with ``forward``.
"""
import threading

import torch
import torch.nn as nn
from torch.func import functional_call

_TEMPLATES = threading.local()  # per thread: functional_call swaps parameters into the template


def _recurrent_template(hidden_size, n_layers):
    """A parameterless (meta) nn.LSTM that runs the cells' own parameters through functional_call."""
    cache = _TEMPLATES.__dict__.setdefault("by_shape", {})
    key = (hidden_size, n_layers)
    if key not in cache:
        cache[key] = nn.LSTM(hidden_size, hidden_size, n_layers, batch_first=True, device="meta")
    return cache[key]


class _StackedLSTM(nn.Module):
    """Linear embedding followed by ``n_layers`` LSTM cells (2018 names: ``embed``, ``lstm``)."""

    def __init__(self, input_size, hidden_size, n_layers):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.embed = nn.Linear(input_size, hidden_size)
        self.lstm = nn.ModuleList([nn.LSTMCell(hidden_size, hidden_size) for _ in range(n_layers)])

    def init_state(self, batch_size, device=None, dtype=None):
        """Zero (h, c) for every layer, in the parameters' dtype unless told otherwise."""
        dtype = dtype or self.embed.weight.dtype
        zeros = lambda: torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)  # noqa: E731
        return [(zeros(), zeros()) for _ in range(self.n_layers)]

    def _run(self, x, state):
        h = self.embed(x.reshape(-1, self.input_size).to(self.embed.weight.dtype))
        new_state = []
        for cell, hc in zip(self.lstm, state):
            hc = cell(h, hc)
            new_state.append(hc)
            h = hc[0]
        return h, new_state

    def forward(self, x, state):
        with torch.autocast(x.device.type, enabled=False):
            h, state = self._run(x, state)
            return self._head(h), state

    def forward_sequence(self, x, state):
        """Every step of a known input sequence in one call: x (B, S, input_size) -> (head output
        with a step axis (B, S, ...), final state). Equals S calls of ``forward``, state carried."""
        with torch.autocast(x.device.type, enabled=False):
            B, S = x.shape[:2]
            h = self.embed(x.reshape(B * S, self.input_size).to(self.embed.weight.dtype)).view(B, S, self.hidden_size)
            out, state = self._cells_over_sequence(h, state)
            head = self._head(out.reshape(B * S, self.hidden_size))
            head = tuple(t.view(B, S, -1) for t in head) if isinstance(head, tuple) else head.view(B, S, -1)
            return head, state

    def _cells_over_sequence(self, x, state):
        """The stacked cells over x (B, S, hidden): (top layer's h at every step, final state)."""
        if x.device.type == "cuda":
            # one cuDNN call for the whole stack: the 2018 cells' parameters under nn.LSTM's names
            # (both order the gates i, f, g, o)
            params = {f"{name}_l{k}": getattr(cell, name) for k, cell in enumerate(self.lstm)
                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            h0 = torch.stack([hc[0] for hc in state])
            c0 = torch.stack([hc[1] for hc in state])
            out, (h_n, c_n) = functional_call(_recurrent_template(self.hidden_size, self.n_layers), params,
                                              (x, (h0, c0)))
            return out, list(zip(h_n.unbind(0), c_n.unbind(0)))
        # Elsewhere layer by layer, each layer's input projection for all steps in one product. (The
        # CPU's oneDNN LSTM, which nn.LSTM would pick, differs from the cells by ~1e-4 in float32.)
        new_state = []
        for cell, (h, c) in zip(self.lstm, state):
            pre = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih)
            outs = []
            for t in range(x.shape[1]):
                i, f, g, o = (pre[:, t] + torch.nn.functional.linear(h, cell.weight_hh, cell.bias_hh)).chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            x = torch.stack(outs, 1)
            new_state.append((h, c))
        return x, new_state


class LSTM(_StackedLSTM):
    """Deterministic frame predictor: output = tanh(Linear(h_top))."""

    def __init__(self, input_size, output_size, hidden_size, n_layers):
        super().__init__(input_size, hidden_size, n_layers)
        self.output_size = output_size
        self.output = nn.Sequential(nn.Linear(hidden_size, output_size), nn.Tanh())

    def _head(self, h):
        return self.output(h)


class GaussianLSTM(_StackedLSTM):
    """Diagonal Gaussian over z: returns (mu, logvar); sample with :func:`reparameterize`."""

    def __init__(self, input_size, output_size, hidden_size, n_layers):
        super().__init__(input_size, hidden_size, n_layers)
        self.output_size = output_size
        self.mu_net = nn.Linear(hidden_size, output_size)
        self.logvar_net = nn.Linear(hidden_size, output_size)

    def _head(self, h):
        return self.mu_net(h), self.logvar_net(h)


def reparameterize(mu, logvar):
    """z = mu + eps * exp(logvar / 2), eps ~ N(0, I) from the global torch RNG (as in 2018)."""
    std = torch.exp(0.5 * logvar)
    return mu + torch.randn_like(std) * std
