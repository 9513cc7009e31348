"""Checkpoints: plain dicts written atomically and loaded with ``weights_only=True``.

A checkpoint holds the model config (so the model is rebuilt from the file alone),
the state dicts, the optimizer state, the epoch and step counters, the run's
arguments and a format version. Random state needs no saving: the training loop
reseeds from (seed, epoch, rank) at every epoch, so a resumed run replays exactly.
"""
import errno
import os
import pickle
import shutil
import zipfile

import torch

from svgvp.command_line import OneLineArgumentParser
from svgvp.models.svg import SVG, SVGConfig
from svgvp.training.checkpoint_2018 import Checkpoint2018Error, read_2018_checkpoint
from svgvp.utils import atomic_write

FORMAT_VERSION = 1
FULL_DISK_BYTES = 16 << 20  # less free space than this after a failed write: the disk is full
PROGRAM = "svg"


class CheckpointError(Exception):
    """The file is missing, corrupt or not a checkpoint of this program; the message says which."""


def build_checkpoint(config, model, epoch, step, args, optimizer=None, optimizer_name=None, digit_source=None,
                     mse=None, kld=None, converted_from=None):
    """The checkpoint schema, built in one place (training, the 2018 reader and the tests use it).

    config: the SVGConfig dict (rebuilds the model); model / optimizer: state dicts; epoch, step:
    the last finished epoch and the updates so far; args: the run's settings as plain values (they
    also hold dataset, n_past and n_future: each fact is stored once); the optional rest as named.
    """
    ckpt = {"kind": "svg-lp" if config["learned_prior"] else "svg-fp", "config": dict(config), "model": model,
            "epoch": epoch, "step": step, "args": dict(args)}
    optional = {"optimizer": optimizer, "optimizer_name": optimizer_name, "digit_source": digit_source,
                "mse": mse, "kld": kld, "converted_from": converted_from}
    ckpt.update({k: v for k, v in optional.items() if v is not None})
    return ckpt


def save_checkpoint(path, payload):
    """Write payload atomically; a full disk raises OSError(ENOSPC) (through a file object torch.save
    reports the system's error instead of its own 'unexpected pos')."""
    payload = dict(payload, format_version=FORMAT_VERSION, program=PROGRAM)

    def write(tmp):
        with open(tmp, "wb") as f:
            try:
                torch.save(payload, f)
            except RuntimeError as err:  # a short write surfaces as torch's "unexpected pos" at the end
                if shutil.disk_usage(os.path.dirname(os.path.abspath(tmp))).free < FULL_DISK_BYTES:
                    raise OSError(errno.ENOSPC, "No space left on device", tmp) from None
                raise OSError(errno.EIO, f"the checkpoint could not be written ({err})", tmp) from None
    atomic_write(path, write)


def load_checkpoint(path, map_location="cpu"):
    """Load and validate a checkpoint dict; raises CheckpointError with the reason and the fix.

    Files of this project load with ``weights_only=True``. A model file of the 2018 code
    (edenton/svg) is read by the restricted reader of ``checkpoint_2018`` and converted in memory;
    the result carries ``converted_from``.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint file at '{path}'; pass the model.pth of a training run")
    if not zipfile.is_zipfile(path):  # our files are zip archives; the 2018 authors' are legacy
        return _load_2018(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        return _load_2018(path)  # pickled modules: a 2018 file written by a later PyTorch
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(f"'{path}' is corrupt or truncated and cannot be read ({err}); "
                              f"use another checkpoint or retrain") from err
    if not isinstance(ckpt, dict) or ckpt.get("program") != PROGRAM or "config" not in ckpt or "model" not in ckpt:
        raise CheckpointError(f"'{path}' is not an svg checkpoint (no svg program tag, config and model weights)")
    if not isinstance(ckpt.get("format_version", 0), int):
        raise CheckpointError(f"'{path}' has a format_version of type {type(ckpt['format_version']).__name__}; "
                              f"it was not written by this program")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"'{path}' has checkpoint format {ckpt['format_version']}, newer than this code "
                              f"({FORMAT_VERSION}); update the code")
    return ckpt


def check_training_fields(ckpt, path):
    """Refuse a checkpoint whose counters or settings have the wrong type (it cannot be continued)."""
    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool)
    if "args" not in ckpt or "epoch" not in ckpt:
        raise CheckpointError(f"'{path}' has no training arguments or epoch count; it cannot be continued")
    problems = [(not isinstance(ckpt["args"], dict), f"args is a {type(ckpt['args']).__name__}, not a dict"),
                (not whole(ckpt["epoch"]) or ckpt["epoch"] < -1, f"epoch is {ckpt['epoch']!r}, not a whole number"),
                (not whole(ckpt.get("step")) or ckpt.get("step") < 0,
                 f"step is {ckpt.get('step', 'missing')!r}, not a whole number of updates")]
    for bad, what in problems:
        if bad:
            raise CheckpointError(f"'{path}' is damaged: its {what}; it cannot be continued, use another checkpoint")


def _load_2018(path):
    try:
        ckpt = read_2018_checkpoint(path)
    except Checkpoint2018Error as err:
        raise CheckpointError(f"'{path}' is neither an svg checkpoint nor a readable 2018 edenton/svg model "
                              f"file: {err}") from err
    except OSError as err:
        raise CheckpointError(f"'{path}' cannot be read ({err})") from err
    return dict(build_checkpoint(**ckpt), format_version=FORMAT_VERSION, program=PROGRAM)


def describe_source(ckpt):
    """One line for the user when a checkpoint was converted from a 2018 file, else None."""
    source = ckpt.get("converted_from")
    if not source:
        return None
    return (f"note: read a 2018 edenton/svg model file ({source['file']}, "
            f"SVG-{'LP' if ckpt['config']['learned_prior'] else 'FP'}, {ckpt['config']['model']} "
            f"{ckpt['config']['image_width']}x{ckpt['config']['image_width']}, dataset {ckpt['args']['dataset']}); "
            f"converted in memory")


def convert_2018(src, dst, force=False):
    """Write a 2018 model file in this project's format (loads with weights_only=True)."""
    dst = _output_file(src, dst, force)
    ckpt = load_checkpoint(src)
    if not ckpt.get("converted_from"):
        raise CheckpointError(f"'{src}' is already an svg checkpoint; nothing to convert")
    build_model(ckpt)  # weights that do not fit opt's configuration stop here, before anything is written
    save_checkpoint(dst, ckpt)
    return ckpt


def export_inference(src, dst, force=False):
    """Copy a training checkpoint without its optimizer state (about a third of the size).

    The copy loads everywhere a checkpoint does; training continues from it with --model_dir
    (a fresh optimizer), not with --resume.
    """
    dst = _output_file(src, dst, force)
    ckpt = load_checkpoint(src)
    build_model(ckpt)  # NaN weights or a config that does not fit them stop here, before anything is written
    ckpt.pop("optimizer", None)
    ckpt["exported_from"] = os.path.basename(os.path.dirname(os.path.abspath(src)))
    save_checkpoint(dst, ckpt)


def _is_run_checkpoint(path):
    """A run folder's model.pth (its folder holds the run's args.json or metrics.jsonl)."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.basename(path) == "model.pth" and any(
        os.path.exists(os.path.join(folder, name)) for name in ("args.json", "metrics.jsonl"))


def _output_file(src, dst, force=False):
    """dst as a checkpoint file name to write, checked before anything is read or written: never a
    directory, never the source itself, never an existing file unless ``force`` (and never a run's
    model.pth, whose optimizer state an exact --resume needs)."""
    if os.path.isdir(dst):
        raise CheckpointError(f"'{dst}' is a directory; give the output's file name, e.g. {os.path.join(dst, 'model.pth')}")
    if not os.path.exists(dst):
        return dst
    if os.path.exists(src) and (os.path.realpath(src) == os.path.realpath(dst) or os.path.samefile(src, dst)):
        raise CheckpointError(f"'{dst}' is the source file itself; write the copy to another file")
    if _is_run_checkpoint(dst):
        raise CheckpointError(f"'{dst}' is a run's checkpoint and exists; it is never replaced (its optimizer state is "
                              f"what --resume needs): write to another file")
    if not force:
        raise CheckpointError(f"'{dst}' exists; choose another file name, or pass --force to replace it")
    return dst


def build_model(ckpt, device="cpu"):
    """Rebuild the SVG model of a loaded checkpoint and load its weights."""
    bad = [k for k, v in ckpt["model"].items() if torch.is_tensor(v) and v.is_floating_point()
           and not torch.isfinite(v).all()] if isinstance(ckpt.get("model"), dict) else []
    if bad:
        raise CheckpointError(f"the checkpoint's weights hold NaN or infinite values ({bad[0]}"
                              f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}): a diverged run; use an "
                              f"earlier checkpoint")
    try:
        model = SVG(SVGConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
    except (TypeError, ValueError, RuntimeError, AttributeError) as err:
        where = " (the 2018 file's opt does not fit its weights)" if ckpt.get("converted_from") else ""
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]  # the first concrete mismatch, not the heading
        raise CheckpointError(f"checkpoint config and weights do not form an SVG model{where}: {detail}") from err
    return model.to(device)


def load_model(path, device="cpu"):
    """(model in eval mode, checkpoint dict) from a checkpoint path."""
    ckpt = load_checkpoint(path)
    model = build_model(ckpt, device)
    model.eval()
    return model, ckpt


def main(argv=None):
    """The checkpoint tools' command line (svg-checkpoint): export | convert SRC DST."""
    import sys
    p = OneLineArgumentParser(prog="svg-checkpoint", description="Checkpoint tools.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="write an inference-only copy (no optimizer state)")
    c = sub.add_parser("convert", help="write a 2018 edenton/svg model file in this project's format")
    for command in (e, c):
        command.add_argument("src")
        command.add_argument("dst")
        command.add_argument("--force", action="store_true",
                             help="replace an existing dst (never the source, never a run's model.pth)")
    a = p.parse_args(argv)
    try:
        if a.command == "export":
            export_inference(a.src, a.dst, a.force)
        else:
            converted = convert_2018(a.src, a.dst, a.force)
            print(describe_source(converted))
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        print(f"error: cannot write '{a.dst}' ({err.strerror}); choose a writable path", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {a.dst}")


def load_optimizer_state(optimizer, state, path):
    """Restore the optimizer of a resumed run; state that does not fit the model is a CheckpointError."""
    try:
        optimizer.load_state_dict(state)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for p in params:  # load_state_dict checks group sizes only; a wrong moment shape fails at step time
            for name, value in optimizer.state.get(p, {}).items():
                if torch.is_tensor(value) and value.dim() > 0 and value.shape != p.shape:
                    raise ValueError(f"{name} has shape {tuple(value.shape)} for a parameter of {tuple(p.shape)}")
    except (ValueError, KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"the optimizer state in '{path}' does not fit the model ({err}); continue the run "
                              f"with --model_dir (fresh optimizer) instead") from None


if __name__ == "__main__":
    main()
