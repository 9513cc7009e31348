"""The frame-predictor LSTM and the Gaussian LSTM (posterior and prior).

Unlike the 2018 modules these hold no batch size, device or hidden state: the
caller owns the state, ``forward(x, state) -> (out, state)``.

Under mixed precision (``--amp``) these networks run in their parameters' dtype with autocast
off: they are a few percent of the model's FLOPs, and float32 keeps the cell state, which
accumulates over time, and the Gaussian parameters, which feed exp() and the KL term, exact.
"""
import torch
import torch.nn as nn


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
