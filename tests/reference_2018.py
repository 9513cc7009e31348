"""The 2018 loops written plainly, one time step (and one sample) at a time: the references the
batched model must equal, used by the tests and by the benchmarks.

Each follows the 2018 script of its model kind (``train_svg_lp.py`` / ``train_svg_fp.py`` for the
training objective, ``generate_svg_lp.py`` / ``generate_svg_fp.py`` for sampling) with stateless
modules, nothing more. They are slow on purpose: no batching across time or samples.
"""
import torch
import torch.nn.functional as F


def kl_2018(mu1, logvar1, mu2, logvar2, batch_size):
    sigma1 = logvar1.mul(0.5).exp()
    sigma2 = logvar2.mul(0.5).exp()
    kld = torch.log(sigma2 / sigma1) + (torch.exp(logvar1) + (mu1 - mu2) ** 2) / (2 * torch.exp(logvar2)) - 0.5
    return kld.sum() / batch_size


def reference_loss(model, x, n_past):
    """(mse, kld) exactly as the 2018 loop of the model's kind computes them; x is (B, T, C, H, W)."""
    if model.prior is not None:
        return reference_loss_lp(model, x, n_past)
    return reference_loss_fp(model, x, n_past)


def _skip_update(cfg, i, n_past, skip, skip_i):
    if cfg.last_frame_skip or i < n_past or skip is None:
        return skip_i
    if cfg.skip_from_last_conditioning and i == n_past:
        return skip_i
    return skip


def reference_loss_lp(model, x, n_past):
    """2018 train_svg_lp.py train(): per step, encode x[i-1] then x[i]; learned prior."""
    B, T = x.shape[:2]
    cfg = model.config
    post = model.posterior.init_state(B, x.device, x.dtype)
    pred = model.frame_predictor.init_state(B, x.device, x.dtype)
    prior = model.prior.init_state(B, x.device, x.dtype)
    mse = 0.0
    kld = 0.0
    skip = None
    for i in range(1, T):
        h, skip_i = model.encoder(x[:, i - 1])
        h_target = model.encoder(x[:, i])[0]
        skip = _skip_update(cfg, i, n_past, skip, skip_i)
        (mu, logvar), post = model.posterior(h_target, post)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        (mu_p, logvar_p), prior = model.prior(h, prior)
        h_pred, pred = model.frame_predictor(torch.cat([h, z], 1), pred)
        x_pred = model.decoder(h_pred, skip)
        mse = mse + F.mse_loss(x_pred, x[:, i])
        kld = kld + kl_2018(mu, logvar, mu_p, logvar_p, B)
    return mse, kld


def reference_loss_fp(model, x, n_past):
    """2018 train_svg_fp.py train(): every frame encoded once, in order 0..T-1, before the loop;
    the KL is against N(0, I)."""
    B, T = x.shape[:2]
    cfg = model.config
    post = model.posterior.init_state(B, x.device, x.dtype)
    pred = model.frame_predictor.init_state(B, x.device, x.dtype)
    h_seq = [model.encoder(x[:, t]) for t in range(T)]
    mse = 0.0
    kld = 0.0
    skip = None
    for i in range(1, T):
        h_target = h_seq[i][0]
        h, skip_i = h_seq[i - 1]
        skip = _skip_update(cfg, i, n_past, skip, skip_i)
        (mu, logvar), post = model.posterior(h_target, post)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        h_pred, pred = model.frame_predictor(torch.cat([h, z], 1), pred)
        x_pred = model.decoder(h_pred, skip)
        mse = mse + F.mse_loss(x_pred, x[:, i])
        kld = kld + kl_2018(mu, logvar, torch.zeros_like(mu), torch.zeros_like(logvar), B)
    return mse, kld


def reference_posterior_rollout(model, x, n_past):
    """(B, T, C, H, W): make_gifs' "approximate posterior" of 2018 generate_svg_lp.py / _fp.py: per step,
    encode the last frame and the true next one, z = the posterior mean, decode from n_past on."""
    B, T = x.shape[:2]
    cfg = model.config
    pred = model.frame_predictor.init_state(B, x.device, x.dtype)
    post = model.posterior.init_state(B, x.device, x.dtype)
    x_in, frames, skip = x[:, 0], [x[:, 0]], None
    for i in range(1, T):
        h, skip_i = model.encoder(x_in)
        h_target = model.encoder(x[:, i])[0]
        if cfg.last_frame_skip or i < n_past or (cfg.skip_from_last_conditioning and i == n_past) or skip is None:
            skip = skip_i
        (z, _), post = model.posterior(h_target, post)   # the mean
        if i < n_past:
            _, pred = model.frame_predictor(torch.cat([h, z], 1), pred)
            x_in = x[:, i]
        else:
            h_pred, pred = model.frame_predictor(torch.cat([h, z], 1), pred)
            x_in = model.decoder(h_pred, skip)
        frames.append(x_in)
    return torch.stack(frames, 1)


def reference_sample(model, x, n_past, n_future, nsample, noise):
    """(B, nsample, n_past + n_future, C, H, W) sampled the 2018 way."""
    B = x.shape[0]
    cfg = model.config
    learned = model.prior is not None
    samples = []
    for s in range(nsample):
        pred = model.frame_predictor.init_state(B, x.device, x.dtype)
        post = model.posterior.init_state(B, x.device, x.dtype)
        prior = model.prior.init_state(B, x.device, x.dtype) if learned else None
        x_in = x[:, 0]
        frames = [x_in]
        skip = None
        for i in range(1, n_past + n_future):
            h, skip_i = model.encoder(x_in)
            # skip is None only with n_past 1, where the 2018 code crashes; the documented fix: frame 0
            if cfg.last_frame_skip or i < n_past or (cfg.skip_from_last_conditioning and i == n_past) or skip is None:
                skip = skip_i
            if i < n_past:
                h_target = model.encoder(x[:, i])[0]
                (mu, logvar), post = model.posterior(h_target, post)
                if learned:   # generate_svg_lp.py: a posterior sample, then prior(h) warms the prior up
                    z = mu + noise(s) * torch.exp(0.5 * logvar)
                    _, prior = model.prior(h, prior)
                else:         # generate_svg_fp.py: the posterior mean
                    z = mu
                _, pred = model.frame_predictor(torch.cat([h, z], 1), pred)
                x_in = x[:, i]
            else:
                if learned:
                    (mu_p, logvar_p), prior = model.prior(h, prior)
                    z = mu_p + noise(s) * torch.exp(0.5 * logvar_p)
                else:
                    z = noise(s)
                h_pred, pred = model.frame_predictor(torch.cat([h, z], 1), pred)
                x_in = model.decoder(h_pred, skip)
            frames.append(x_in)
        samples.append(torch.stack(frames, 1))
    return torch.stack(samples, 1)
