"""The 2018 sampling loops written plainly, one sample and one time step at a time.

A reference for ``SVG.sample``: it follows the sample loop of the 2018 ``generate_svg_lp.py``
(LP) and ``generate_svg_fp.py`` (FP) with stateless modules. Only where z comes from is
abstracted: ``noise(s)`` returns the next standard-normal draw (B, z_dim) for sample s.
"""
import torch


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
