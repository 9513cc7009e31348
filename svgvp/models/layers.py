"""Building blocks shared by the backbones.

The 2018 code runs the encoder once per time step, so every batch-norm layer
normalises each time step with its own statistics. ``StepBatchNorm2d`` keeps
that exact behaviour while the convolutions run over all frames at once: the
frames of a call are laid out batch-major, ``(B * steps, C, H, W)`` with index
``b * steps + t``, and statistics are taken per ``t`` over the ``B`` sequences.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _identity(t):
    return t


class StepBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with separate training statistics for each of ``steps`` groups.

    ``steps=1`` is plain ``nn.BatchNorm2d``. With ``steps=T`` the output equals
    calling plain batch norm T times, once per time step. ``stat_order`` lists the
    time steps in the order the 2018 code would have fed them, so the running
    statistics end as its sequence of momentum updates leaves them.
    """

    def forward(self, x, steps=1, stat_order=None, then=None):
        """``then``: an elementwise in-place activation applied to the normalised values before they are
        reshaped back to frames. An in-place op on that reshape (a view) would make autograd clone and
        copy the whole tensor in the backward pass (CopySlices); on the grouped tensor it costs nothing."""
        if then is None:
            then = _identity
        if not self.training or (steps == 1 and stat_order is None):
            return then(super().forward(x))
        n, c, h, w = x.shape
        if n % steps:
            raise ValueError(f"batch of {n} frames does not split into {steps} time steps")
        if steps > 1 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            # The steps fold into the channels below, a grouping that channels-last memory cannot express
            # as a view. Normalising a contiguous copy with the fused kernel and handing the result back in
            # channels-last makes fewer passes over memory than normalising in place with elementwise ops
            # (about 10 per block, forward and backward).
            out = self.forward(x.contiguous(), steps, stat_order, then)
            return out.contiguous(memory_format=torch.channels_last)
        # (B*T, C, H, W) batch-major -> (B, T*C, H, W): channel t*C+c holds step t.
        grouped = x.reshape(n // steps, steps * c, h, w)
        track = self.track_running_stats
        # With momentum 1 the scratch buffers receive exactly each step's batch mean and unbiased
        # variance, which the running statistics need, without a second pass over the data.
        step_mean = torch.zeros(steps * c, device=x.device, dtype=self.running_mean.dtype) if track else None
        step_var = torch.ones(steps * c, device=x.device, dtype=self.running_var.dtype) if track else None
        out = F.batch_norm(grouped, step_mean, step_var, self.weight.repeat(steps), self.bias.repeat(steps),
                           training=True, momentum=1.0, eps=self.eps)
        if track:
            self._update_running_stats(step_mean.view(steps, c), step_var.view(steps, c), stat_order)
        return then(out).reshape(n, c, h, w)

    @torch.no_grad()
    def _update_running_stats(self, mean, var, stat_order):
        steps = mean.shape[0]
        order = tuple(range(steps)) if stat_order is None else tuple(stat_order)
        coef, keep = _momentum_weights(steps, order, self.momentum, mean.dtype, mean.device)
        k = len(order)
        self.running_mean.mul_(keep).add_((coef * mean).sum(0).to(self.running_mean.dtype))
        self.running_var.mul_(keep).add_((coef * var).sum(0).to(self.running_var.dtype))
        self.num_batches_tracked.add_(k)


_WEIGHT_CACHE = {}


def _momentum_weights(steps, order, m, dtype, device):
    """(per-step weights (steps, 1), weight kept by the old statistics) of len(order) momentum updates.

    r_k = (1-m) r_{k-1} + m s_k unrolled: update j has weight m (1-m)^(k-1-j). Built once per
    (steps, order, momentum, dtype, device) and reused, so a training step on a GPU copies nothing
    from the host.
    """
    if torch.compiler.is_compiling():
        # traced once into the graph as a constant; a cache filled inside the trace would make dynamo
        # guard on its contents and compile the whole step a second time on the next call
        return _build_momentum_weights(steps, order, m, dtype, device)
    key = (steps, order, m, dtype, device)
    if key not in _WEIGHT_CACHE:
        _WEIGHT_CACHE[key] = _build_momentum_weights(steps, order, m, dtype, device)
    return _WEIGHT_CACHE[key]


def _build_momentum_weights(steps, order, m, dtype, device):
    k = len(order)
    coef = [0.0] * steps
    for j, t in enumerate(order):
        coef[t] += m * (1.0 - m) ** (k - 1 - j)
    return torch.tensor(coef, dtype=dtype, device=device)[:, None], (1.0 - m) ** k


class StepSequential(nn.Sequential):
    """nn.Sequential that passes the time-step grouping to the layers that need it; an in-place
    LeakyReLU after a batch norm runs inside it (``StepBatchNorm2d``'s ``then``: the same values)."""

    def forward(self, x, steps=1, stat_order=None):
        layers = list(self)
        k = 0
        while k < len(layers):
            layer, after = layers[k], layers[k + 1] if k + 1 < len(layers) else None
            if isinstance(layer, StepBatchNorm2d) and isinstance(after, nn.LeakyReLU) and after.inplace:
                x = layer(x, steps, stat_order, then=after)
                k += 1  # the activation ran inside the batch norm
            elif isinstance(layer, (StepBatchNorm2d, StepSequential, Block)):
                x = layer(x, steps, stat_order)
            else:
                x = layer(x)
            k += 1
        return x


class Block(nn.Module):
    """One conv (or transposed conv), batch norm and LeakyReLU(0.2): the 2018 ``main`` block."""

    def __init__(self, conv):
        super().__init__()
        self.main = StepSequential(conv, StepBatchNorm2d(conv.out_channels), nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x, steps=1, stat_order=None):
        return self.main(x, steps, stat_order)


def dcgan_conv(nin, nout):
    return Block(nn.Conv2d(nin, nout, 4, 2, 1))


def dcgan_upconv(nin, nout):
    return Block(nn.ConvTranspose2d(nin, nout, 4, 2, 1))


def vgg_layer(nin, nout):
    return Block(nn.Conv2d(nin, nout, 3, 1, 1))


def latent_block(nin, dim):
    """The encoder's last block: 4x4 conv to a 1x1 vector, batch norm, tanh."""
    return StepSequential(nn.Conv2d(nin, dim, 4, 1, 0), StepBatchNorm2d(dim), nn.Tanh())


def latent_upconv(dim, nout):
    """The decoder's first block: 1x1 vector to a 4x4 map, batch norm, LeakyReLU(0.2)."""
    return StepSequential(nn.ConvTranspose2d(dim, nout, 4, 1, 0), StepBatchNorm2d(nout), nn.LeakyReLU(0.2, inplace=True))


def init_weights(module):
    """The 2018 init: conv/linear weights N(0, 0.02), bias 0; batch norm weight N(1, 0.02), bias 0.

    LSTM cells keep PyTorch's default init, as in 2018.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class SkipEncoder(nn.Module):
    """Encoder made of blocks ``c1..cK``; every block but the last gives a skip feature map.

    Subclasses set ``self.blocks`` (names, in order) and ``self.pool`` (max-pool between blocks).
    """

    pool = False

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x, steps=1, stat_order=None):
        # x: (N, C, W, W) -> latent (N, dim), skips [(N, C_k, W_k, W_k)] from full to low resolution
        skips = []
        h = x
        for k, name in enumerate(self.blocks):
            if k > 0 and self.pool:
                h = F.max_pool2d(h, 2, 2)
            h = getattr(self, name)(h, steps, stat_order)
            skips.append(h)
        return h.reshape(-1, self.dim), skips[:-1]


class SkipDecoder(nn.Module):
    """Decoder made of blocks ``upc1..upcK``; block k>1 takes the previous output and a skip.

    Subclasses set ``self.blocks`` and ``self.upsample`` (nearest 2x before each block after the first).
    """

    upsample = False

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, vec, skips, steps=1, stat_order=None, skip_repeat=1):
        # vec: (N, dim); skips as returned by the encoder -> (N, C, W, W) in [0, 1].
        # skip_repeat=r: skips hold N / r rows, each shared by r consecutive rows of vec (samples of
        # one sequence); they are broadcast into the concatenation, never copied per row.
        d = getattr(self, self.blocks[0])(vec.reshape(-1, self.dim, 1, 1), steps, stat_order)
        for k, name in enumerate(self.blocks[1:]):
            if self.upsample:
                d = upsample_nearest_2x(d)
            d = getattr(self, name)(_cat_skip(d, skips[-1 - k], skip_repeat), steps, stat_order)
        return d


def upsample_nearest_2x(d):
    """The same values as F.interpolate(d, scale_factor=2, mode="nearest"), as an expand and a
    reshape, whose backward is a plain sum: deterministic on CUDA, where upsample_nearest2d's
    backward is not (it would stop --deterministic runs)."""
    n, c, h, w = d.shape
    return d[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


def _cat_skip(d, skip, repeat):
    """torch.cat([d, skip], 1) where each skip row serves ``repeat`` consecutive rows of d."""
    if repeat == 1:
        return torch.cat([d, skip], 1)
    n = d.shape[0]
    grouped = d.view(n // repeat, repeat, *d.shape[1:])
    shared = skip.unsqueeze(1).expand(-1, repeat, -1, -1, -1)
    return torch.cat([grouped, shared], 2).reshape(n, -1, *d.shape[2:])
