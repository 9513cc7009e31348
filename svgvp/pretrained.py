"""Pretrained SVG models by name, and the in-memory cache of their encoders.

``smmnist`` is shipped in the repository's ``pretrained_models/``; ``bair`` is the authors' 2018
file, which a user downloads from edenton/svg and puts there (read by ``checkpoint_2018``). The
folder is found beside the package in a checkout (an editable install); ``$SVG_PRETRAINED_DIR``
names it for a non-editable install, which does not carry the 50 MB model file.
"""
import os
import sys
import threading

import torch

from svgvp.metrics.feature_distances import InputError
from svgvp.utils import choose_device

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository, in a checkout
PRETRAINED_DIR = os.environ.get("SVG_PRETRAINED_DIR") or os.path.join(CHECKOUT, "pretrained_models")
PRETRAINED = {"smmnist": "svglp_smmnist2.pth", "bair": "svglp_bair.pth"}
NOT_SHIPPED = {"bair": "the authors' 2018 SVG-LP BAIR model is published in the edenton/svg repository as "
                       "pretrained_models/svglp_bair.pth; download it and put it at that path"}
DEFAULT_MODEL_PATH = os.path.join(PRETRAINED_DIR, PRETRAINED["smmnist"])
# srvp-fd's names for the same data sets (its "mmnist_stochastic" is SM-MNIST, the SVG paper's data)
DATASET_ALIASES = {"mmnist_stochastic": "smmnist"}
# srvp-fd's other names: data sets for which no SVG model is published
NO_SVG_MODEL = ("mmnist_deterministic", "kth", "human")
_MODEL_CACHE = {}
_MODEL_CACHE_LOCK = threading.Lock()  # threads on a cold cache load each model once


def resolve_model_path(model_path=None, dataset=None):
    if model_path is not None and dataset is None and not os.path.exists(str(model_path)) \
            and str(model_path) in (*PRETRAINED, *DATASET_ALIASES, *NO_SVG_MODEL):
        raise InputError(f"'{model_path}' is not a file but a data set's name: pass dataset='{model_path}' (here the "
                         f"third positional argument is model_path; in srvp-fd it is dataset)")
    if dataset is not None and model_path is not None:
        raise InputError(f"both model_path='{model_path}' and dataset='{dataset}' were given: they name two models; "
                         f"pass only model_path (your checkpoint) or only dataset (a pretrained model)")
    if dataset is not None:
        dataset = DATASET_ALIASES.get(dataset, dataset)
        if dataset in NO_SVG_MODEL:
            raise InputError(f"no pretrained SVG model exists for '{dataset}' (srvp-fd's models for it are SRVP "
                             f"networks); train one with train_svg_lp.py and pass model_path= its model.pth")
        if dataset not in PRETRAINED:
            raise InputError(f"unknown dataset '{dataset}'; pretrained models exist for: {', '.join(PRETRAINED)} "
                             f"('mmnist_stochastic', srvp-fd's name, is 'smmnist')")
        path = os.path.join(PRETRAINED_DIR, PRETRAINED[dataset])
        if not os.path.isfile(path):
            if dataset in NOT_SHIPPED:
                raise FileNotFoundError(f"no model file at '{path}': {NOT_SHIPPED[dataset]}")
            shipped = [k for k, v in PRETRAINED.items() if os.path.isfile(os.path.join(PRETRAINED_DIR, v))]
            raise FileNotFoundError(f"the pretrained model for '{dataset}' is not shipped ({path}); "
                                    f"available: {', '.join(shipped) or 'none'}")
        return path
    path = os.path.abspath(model_path or DEFAULT_MODEL_PATH)
    if not os.path.isfile(path):
        if model_path is None:
            raise FileNotFoundError(
                f"the shipped model is not at '{path}': it lives in the repository's pretrained_models/ folder, which "
                f"an installed package does not carry; set SVG_PRETRAINED_DIR to that folder of a clone, or pass "
                f"model_path= a checkpoint")
        raise FileNotFoundError(f"no model file at '{path}'; pass model_path= a checkpoint from train_svg_lp.py")
    return path


def load_encoder(model_path=None, device=None, dataset=None):
    """(encoder in eval mode, config) from a checkpoint (ours or a 2018 edenton/svg file).

    Cached in memory by the file's identity (path, size, modification time) and the device, so a
    file rewritten in place is read again; concurrent callers load each key once.
    """
    from svgvp.training.checkpoint import describe_source, load_model
    path = resolve_model_path(model_path, dataset)
    device = choose_device(device)  # None or "auto": CUDA when present
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns, str(device))
    with _MODEL_CACHE_LOCK:
        if key not in _MODEL_CACHE:
            model, ckpt = load_model(path, device)
            if describe_source(ckpt):
                print(describe_source(ckpt), file=sys.stderr)
            for stale in [k for k in _MODEL_CACHE if k[0] == path and k[3] == key[3]]:
                del _MODEL_CACHE[stale]
            _MODEL_CACHE[key] = (model.encoder.eval(), model.config)
        return _MODEL_CACHE[key]


def cached_models():
    """[(absolute model path, device)] of the encoders held in memory, one per file and device: a file
    rewritten in place replaces its entry."""
    with _MODEL_CACHE_LOCK:
        return [(k[0], k[3]) for k in _MODEL_CACHE]


def clear_model_cache():
    """Forget every cached encoder (frees its memory)."""
    _MODEL_CACHE.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
