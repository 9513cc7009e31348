"""Checkpoints: plain dicts written atomically and loaded with ``weights_only=True``.

A checkpoint holds the model config (so the model is rebuilt from the file alone),
the state dicts, the optimizer state, the epoch and step counters, the run's
arguments and a format version. Random state needs no saving: the training loop
reseeds from (seed, epoch, rank) at every epoch, so a resumed run replays exactly.
"""
import os
import pickle
import zipfile

import torch

from models.svg import SVG, SVGConfig
from utils import atomic_write

FORMAT_VERSION = 1
PROGRAM = "svg"


class CheckpointError(Exception):
    """The file is missing, corrupt or not a checkpoint of this program; the message says which."""


def save_checkpoint(path, payload):
    payload = dict(payload, format_version=FORMAT_VERSION, program=PROGRAM)
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path, map_location="cpu"):
    """Load and validate a checkpoint dict; raises CheckpointError with the reason and the fix."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint file at '{path}'; pass the model.pth of a training run")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"'{path}' is not an svg checkpoint: it holds pickled Python objects (a 2018 edenton/svg "
            f"model file holds whole modules), which are not loaded for safety. Convert its weights or "
            f"train with train_svg_lp.py. ({str(err).splitlines()[0]})") from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"'{path}' is corrupt or truncated and cannot be read ({err}); "
                              f"use another checkpoint or retrain") from err
    if not isinstance(ckpt, dict) or ckpt.get("program") != PROGRAM or "config" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"'{path}' is not an svg checkpoint (no svg program tag, config and model weights)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"'{path}' has checkpoint format {ckpt['format_version']}, newer than this code "
                              f"({FORMAT_VERSION}); update the code")
    return ckpt


def export_inference(src, dst):
    """Copy a training checkpoint without its optimizer state (about a third of the size).

    The copy loads everywhere a checkpoint does; training continues from it with --model_dir
    (a fresh optimizer), not with --resume.
    """
    ckpt = load_checkpoint(src)
    ckpt.pop("optimizer", None)
    ckpt["exported_from"] = os.path.basename(os.path.dirname(os.path.abspath(src)))
    save_checkpoint(dst, ckpt)


def build_model(ckpt, device="cpu"):
    """Rebuild the SVG model of a loaded checkpoint and load its weights."""
    try:
        model = SVG(SVGConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint config and weights do not form an SVG model: {err}") from err
    return model.to(device)


def load_model(path, device="cpu"):
    """(model in eval mode, checkpoint dict) from a checkpoint path."""
    ckpt = load_checkpoint(path)
    model = build_model(ckpt, device)
    model.eval()
    return model, ckpt


if __name__ == "__main__":
    import argparse
    import sys
    p = argparse.ArgumentParser(description="Checkpoint tools.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write an inference-only copy (no optimizer state)")
    e.add_argument("src")
    e.add_argument("dst")
    a = p.parse_args()
    try:
        export_inference(a.src, a.dst)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {a.dst}")
