"""The SVG model: encoder, decoder, frame predictor, posterior and (for SVG-LP) a learned prior.

SVG-LP and SVG-FP differ only in the prior: LP learns a Gaussian LSTM prior
p(z_t | x_{1:t-1}); FP uses N(0, I) and has no prior network.

Training runs every frame of a batch through the encoder in one call, all predicted
frames through the decoder in one call, and each LSTM as one sequence call (only
sampling steps through time). Batch norm keeps per-time-step statistics (see
``models.layers``), so the objective equals the 2018 per-step loop exactly.
"""
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from svgvp.models import BACKBONES
from svgvp.models.layers import init_weights
from svgvp.models.lstm import LSTM, GaussianLSTM, reparameterize


@dataclass
class SVGConfig:
    """Everything needed to rebuild an SVG model (stored in every checkpoint)."""

    model: str = "dcgan"          # backbone: dcgan | vgg
    image_width: int = 64         # 64 | 128
    channels: int = 1
    g_dim: int = 128              # encoder output / decoder input size
    z_dim: int = 10
    rnn_size: int = 256
    predictor_rnn_layers: int = 2
    posterior_rnn_layers: int = 1
    prior_rnn_layers: int = 1
    learned_prior: bool = True    # True: SVG-LP, False: SVG-FP
    last_frame_skip: bool = False  # skip features from the previous frame at every step
    skip_from_last_conditioning: bool = False  # paper wording instead of the 2018 code (see README)

    def __post_init__(self):
        if (self.model, self.image_width) not in BACKBONES:
            known = ", ".join(f"{m} at {w}x{w}" for m, w in BACKBONES)
            raise ValueError(f"no backbone '{self.model}' for image width {self.image_width}; known: {known}")
        for name in ("channels", "g_dim", "z_dim", "rnn_size", "predictor_rnn_layers", "posterior_rnn_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learned_prior and self.prior_rnn_layers < 1:
            raise ValueError(f"prior_rnn_layers must be at least 1, got {self.prior_rnn_layers}")

    def to_dict(self):
        return asdict(self)


def select_frames(x, sources):
    """x[:, sources] for x (B, T, ...) and a list of frame indices, built from slices and expands.

    The skip rule gives runs of consecutive frames and runs of one repeated frame; slicing and
    expanding them needs no index tensor (no host-to-device copy) and has a deterministic backward
    (a sum), where index_select's backward accumulates with atomics on CUDA.
    """
    parts, k = [], 0
    while k < len(sources):
        start, j = sources[k], k + 1
        if j < len(sources) and sources[j] == start:            # a repeated frame
            while j < len(sources) and sources[j] == start:
                j += 1
            parts.append(x[:, start:start + 1].expand(-1, j - k, *x.shape[2:]))
        else:                                                   # consecutive frames
            while j < len(sources) and sources[j] == sources[j - 1] + 1 and (
                    j + 1 >= len(sources) or sources[j + 1] != sources[j]):
                j += 1
            parts.append(x[:, start:start + (j - k)])
        k = j
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def gaussian_kl(mu, logvar, mu_p, logvar_p):
    """Elementwise KL(N(mu, exp(logvar)) || N(mu_p, exp(logvar_p)))."""
    return 0.5 * (logvar_p - logvar) + (logvar.exp() + (mu - mu_p) ** 2) / (2 * logvar_p.exp()) - 0.5


class SVG(nn.Module):
    def __init__(self, config: SVGConfig):
        super().__init__()
        self.config = config
        c = config
        encoder_cls, decoder_cls = BACKBONES[(c.model, c.image_width)]
        self.encoder = encoder_cls(c.g_dim, c.channels)
        self.decoder = decoder_cls(c.g_dim, c.channels)
        self.frame_predictor = LSTM(c.g_dim + c.z_dim, c.g_dim, c.rnn_size, c.predictor_rnn_layers)
        self.posterior = GaussianLSTM(c.g_dim, c.z_dim, c.rnn_size, c.posterior_rnn_layers)
        self.prior = GaussianLSTM(c.g_dim, c.z_dim, c.rnn_size, c.prior_rnn_layers) if c.learned_prior else None
        self.apply(init_weights)

    # ------------------------------------------------------------------ skips
    def skip_frame(self, i, n_past):
        """Index of the frame whose skip features decode step i (the step that predicts frame i).

        2018 code: the skips are refreshed while i < n_past, so predicted frames use frame
        n_past-2. ``skip_from_last_conditioning``: frame n_past-1, as the paper words it.
        ``last_frame_skip``: always the previous frame.
        """
        if self.config.last_frame_skip or i < n_past:
            return i - 1
        last = n_past - 1 if self.config.skip_from_last_conditioning else n_past - 2
        return max(last, 0)  # the 2018 code has no skip at all when n_past == 1

    # --------------------------------------------------------------- training
    def teacher_forced(self, x, n_past):
        """One teacher-forced pass over x: (B, T, C, H, W) in [0, 1].

        Returns x_pred (B, T-1, C, H, W) for frames 1..T-1 and the posterior and prior
        parameters (B, T-1, z_dim) of every step.
        """
        B, T = x.shape[:2]
        if T < 2:
            raise ValueError(f"need at least 2 frames per sequence, got {T}")
        frames = x.reshape(B * T, *x.shape[2:])
        # the 2018 order of encoder calls, which batch norm's running statistics follow:
        # LP encodes x[i-1] then x[i] at every step i; FP encodes each frame once, 0..T-1
        order = [t for i in range(1, T) for t in (i - 1, i)] if self.prior is not None else list(range(T))
        h_all, skips_all = self.encoder(frames, steps=T, stat_order=order)
        h_all = h_all.view(B, T, -1)

        # The three LSTMs as sequence calls: the posterior reads frames 1..T-1, the prior frames 0..T-2,
        # the frame predictor [h(t-1), z(t)] once the posterior has run over the whole sequence.
        h, h_target = h_all[:, :-1], h_all[:, 1:]
        (mu, logvar), _ = self.posterior.forward_sequence(h_target, self.posterior.init_state(B, x.device))
        # one draw per step, in the 2018 order, so that a seed gives the 2018 loop's z exactly
        eps = torch.stack([torch.randn_like(mu[:, 0]) for _ in range(T - 1)], 1)
        z = mu + eps * torch.exp(0.5 * logvar)
        if self.prior is not None:
            (mu_p, logvar_p), _ = self.prior.forward_sequence(h, self.prior.init_state(B, x.device))
        else:
            mu_p, logvar_p = torch.zeros_like(mu), torch.zeros_like(logvar)
        h_pred, _ = self.frame_predictor.forward_sequence(torch.cat([h, z], 2),
                                                          self.frame_predictor.init_state(B, x.device))

        # decode all T-1 predictions in one call, each with its step's skip features
        sources = [self.skip_frame(i, n_past) for i in range(1, T)]
        skips = [select_frames(s.view(B, T, *s.shape[1:]), sources).reshape(B * (T - 1), *s.shape[1:])
                 for s in skips_all]
        x_pred = self.decoder(h_pred.reshape(B * (T - 1), -1), skips, steps=T - 1).view(B, T - 1, *x.shape[2:])
        return x_pred, mu, logvar, mu_p, logvar_p

    def forward(self, x, n_past):
        """The 2018 training objective on x: (B, T, C, H, W).

        Returns (mse, kld): mse = sum over steps of the per-step mean squared error,
        kld = sum over steps of KL(q || p) summed over z and averaged over the batch.
        The loss to minimise is ``mse + beta * kld``.
        """
        x_pred, mu, logvar, mu_p, logvar_p = self.teacher_forced(x, n_past)
        mse = ((x_pred - x[:, 1:]) ** 2).mean(dim=(0, 2, 3, 4)).sum()
        kld = gaussian_kl(mu, logvar, mu_p, logvar_p).sum() / x.shape[0]
        return mse, kld

    # --------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, x, n_past, n_future, nsample=1):
        """Sample nsample futures for each sequence of x: (B, >= n_past, C, H, W).

        As the 2018 generation scripts: conditioning steps use a posterior sample and warm the
        prior up (LP) or use the posterior mean (FP); later steps draw z from the learned prior
        (LP) or N(0, I) (FP) and re-encode each generated frame. Skips follow ``skip_frame``.
        Returns (B, nsample, n_past + n_future, C, H, W): the conditioning frames, then the
        predictions. All nsample samples run as one batch.
        """
        return self._rollout(x, n_past, n_past + n_future, nsample, posterior_mean=False)

    @torch.no_grad()
    def posterior_rollout(self, x, n_past):
        """The 2018 "approximate posterior" rollout: z = posterior mean given the true next frame.

        x: (B, T, C, H, W) -> (B, T, C, H, W); frames from n_past on are generated.
        """
        return self._rollout(x, n_past, x.shape[1], 1, posterior_mean=True)[:, 0]

    def _rollout(self, x, n_past, n_total, nsample, posterior_mean):
        B = x.shape[0]
        if n_past < 1:
            raise ValueError(f"n_past must be at least 1, got {n_past}")
        known = n_total if posterior_mean else n_past
        if x.shape[1] < known:
            raise ValueError(f"need {known} frames per sequence, got {x.shape[1]}")
        # Ground-truth frames are the same for every sample: encode them once and keep one row per
        # sequence (their skip features are broadcast inside the decoder, never copied per sample).
        # Batch norm (when in train mode) groups frames by time step, as the 2018 calls did.
        h_gt, skips_gt = self.encoder(x[:, :known].reshape(B * known, *x.shape[2:]), steps=known)
        h_gt = h_gt.view(B, known, -1)
        skips_gt = [s.view(B, known, *s.shape[1:]) for s in skips_gt]
        per_sample = lambda t: t.repeat_interleave(nsample, 0)  # noqa: E731 - small (B, dim) tensors only
        n = B * nsample
        dev, z_dtype = x.device, self.frame_predictor.embed.weight.dtype
        post_state = self.posterior.init_state(n, dev)
        pred_state = self.frame_predictor.init_state(n, dev)
        prior_state = self.prior.init_state(n, dev) if self.prior is not None else None

        out = [per_sample(x[:, t]) for t in range(n_past)]
        x_in = gen_skips = None
        for i in range(1, n_total):
            if i - 1 < n_past:
                h = per_sample(h_gt[:, i - 1])
            else:
                # one encoder call per generated frame; batch-norm groups = samples (2018: one call each)
                h, gen_skips = self.encoder(x_in, steps=nsample)

            if posterior_mean:
                (z, _), post_state = self.posterior(per_sample(h_gt[:, i]), post_state)
            elif i < n_past:
                (mu, logvar), post_state = self.posterior(per_sample(h_gt[:, i]), post_state)
                if self.prior is not None:  # 2018 LP: a posterior sample, and the prior is warmed up
                    z = reparameterize(mu, logvar)
                    _, prior_state = self.prior(h, prior_state)
                else:                       # 2018 FP: the posterior mean
                    z = mu
            elif self.prior is not None:
                (mu_p, logvar_p), prior_state = self.prior(h, prior_state)
                z = reparameterize(mu_p, logvar_p)
            else:
                z = torch.randn(n, self.config.z_dim, device=dev, dtype=z_dtype)

            h_pred, pred_state = self.frame_predictor(torch.cat([h, z], 1), pred_state)
            if i >= n_past:
                source = self.skip_frame(i, n_past)
                if source < n_past:  # a conditioning frame: one row per sequence, broadcast
                    x_in = self.decoder(h_pred, [s[:, source] for s in skips_gt], steps=nsample,
                                        skip_repeat=nsample)
                else:                # the previous generated frame (--last_frame_skip)
                    x_in = self.decoder(h_pred, gen_skips, steps=nsample)
                out.append(x_in)
        return torch.stack(out, 1).view(B, nsample, n_total, *x.shape[2:])
