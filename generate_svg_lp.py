"""Sample videos from an SVG checkpoint (LP or FP) and evaluate them with the best-of-N protocol.

    python generate_svg_lp.py --model_path RUN/model.pth --log_dir OUT

Writes to --log_dir: one GIF and PNG per test sequence (ground truth, approximate posterior,
best-SSIM sample, 3 random samples), metrics.csv (per sequence and time step), metrics_summary.csv
(mean and 95% CI per time step), metrics_vs_time.png and summary.json. See README, "Evaluation".
"""
import argparse
import csv
import json
import os
import sys

import torch

import cpu_memory
from checkpoint import CheckpointError, describe_source, load_model
from data import DataError, load_dataset
from data.mnist_digits import SOURCES as DIGIT_SOURCES, describe_digit_source
from evaluation import METRICS, best_of_n, best_sample, score_samples, summarise
from metrics import SSIM_VARIANTS, psnr, ssim
from plots import plot_metrics
from utils import (DeviceError, writable_folder, OneLineArgumentParser, UsageError, choose_device, derived_seed, file_sha256, framed, labelled_grid, labelled_row,
                   save_gif, save_png, write_json)

# The paper's test protocol per dataset: (n_past, n_future)
TEST_PROTOCOL = {"smmnist": (5, 20), "kth": (10, 30), "bair": (2, 28)}
# --protocol 2018: every evaluation choice of the 2018 generate_svg_lp.py / generate_svg_fp.py at once
# (bn_train_mode None: decided by the model kind, as 2018: generate_svg_lp.py left batch norm in train mode,
# generate_svg_fp.py called encoder.eval() and decoder.eval())
PROTOCOL_2018 = {"ssim": "2018", "bn_train_mode": None, "n_past": 2, "n_future": 28}
NUM_RANDOM = 3


def build_parser():
    p = OneLineArgumentParser(description="Sample from an SVG checkpoint and evaluate best-of-N SSIM/PSNR.",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
    a("--N", type=int, default=256, help="number of test sequences")
    a("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    a("--bn_train_mode", action="store_true",
      help="batch norm with batch statistics, as the 2018 script (outputs then depend on the batch)")
    a("--ssim", default="standard", choices=SSIM_VARIANTS, help="SSIM variant")
    a("--rollout_batch", type=int, default=2000,
      help="sequence x sample rollouts run together (memory knob; does not change the protocol)")
    a("--no_gifs", action="store_true", help="write only the metrics")
    a("--keep_freed_memory", action=argparse.BooleanOptionalAction, default=True,
      help="on the CPU under Linux, reuse freed memory instead of page-faulting it back from the kernel "
           "(same numbers, faster; see cpu_memory.py)")
    a("--mnist_source", default=None, choices=DIGIT_SOURCES,
      help="where SM-MNIST's test digits come from (default: the checkpoint's training setting); a source "
           "other than the one the model was trained on is warned about")
    a("--protocol", default="ours", choices=("ours", "2018"),
      help="2018: the 2018 scripts' evaluation choices at once (scikit-image SSIM of 2018, 2 -> 28 frames, batch "
           "norm in train mode for SVG-LP and eval mode for SVG-FP); flags given explicitly still win")
    return p


def parse_args(argv=None):
    """Parse the command line; ``--protocol 2018`` turns the 2018 choices into the defaults."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.protocol == "2018":
        parser.set_defaults(**PROTOCOL_2018)
        args = parser.parse_args(argv)
    return args


def evaluate_batch(model, x, n_past, n_future, nsample, rollout_batch, ssim_variant, gen):
    """Sample nsample futures per sequence of x (B, T, C, H, W) and score them frame by frame.

    Returns per-sample metrics (B, nsample, n_future) and the frames the GIFs need.
    """
    B = x.shape[0]
    truth = x[:, n_past:n_past + n_future]
    chunk = max(1, rollout_batch // B)
    ssims, psnrs, kept = [], [], {}
    rand = torch.randint(nsample, (B, NUM_RANDOM), generator=gen)
    best_frames = torch.zeros(B, n_past + n_future, *x.shape[2:], device=x.device)
    best_score = torch.full((B,), -float("inf"), device=x.device, dtype=torch.float64)
    for start in range(0, nsample, chunk):
        s = model.sample(x, n_past, n_future, nsample=min(chunk, nsample - start))     # (B, s, T, C, H, W)
        pred = s[:, :, n_past:]
        ss, ps = score_samples(pred, truth, ssim_variant)                              # (B, s, n_future)
        ssims.append(ss)
        psnrs.append(ps)
        # keep the best-mean-SSIM sample seen so far and the pre-drawn random samples
        idx, score = best_sample(ss)
        better = score > best_score
        best_score = torch.where(better, score, best_score)
        best_frames[better] = s[better, idx[better]]
        for b in range(B):
            for r in range(NUM_RANDOM):
                k = rand[b, r].item() - start
                if 0 <= k < s.shape[1]:
                    kept[(b, r)] = s[b, k].clone()  # a copy: a view would pin the whole chunk
    randoms = torch.stack([torch.stack([kept[(b, r)] for r in range(NUM_RANDOM)]) for b in range(B)])
    return torch.cat(ssims, 1), torch.cat(psnrs, 1), best_frames, randoms


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
    if min(args.batch_size, args.nsample, args.N, args.rollout_batch) < 1:
        raise UsageError("--batch_size, --nsample, --N and --rollout_batch must be at least 1")
    if args.num_threads < 0:
        raise UsageError(f"--num_threads must be 0 or more, got {args.num_threads}")
    if not 0 <= args.seed < 2 ** 63:
        raise UsageError(f"--seed must be 0 or more (and below 2**63), got {args.seed}")
    device = choose_device(args.device)
    cpu_memory.keep_freed_memory_on(device, args.keep_freed_memory)
    model, ckpt = load_model(args.model_path, device)
    if describe_source(ckpt):
        print(describe_source(ckpt), flush=True)
    train_args = ckpt.get("args", {})
    dataset = train_args.get("dataset", "smmnist")
    n_past_default, n_future_default = TEST_PROTOCOL.get(dataset, (train_args.get("n_past", 5),
                                                                   train_args.get("n_future", 10)))
    n_past = args.n_past if args.n_past is not None else n_past_default
    n_future = args.n_future if args.n_future is not None else n_future_default
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


def evaluate(args, model, device, test, n_past, n_future):
    """Sample and score the first N test sequences (writing their GIFs and PNGs on the way).

    Returns {metric: (N, n_future) tensor} and the Fréchet distance between one random sample per
    sequence and the real frames, with the model's own encoder.
    """
    from frechet_distance import FrechetDistanceCalculator, RunningStatistics, frechet_distance_from_statistics
    fd_calc = FrechetDistanceCalculator(model=model)  # the model in memory; the file is not read again
    real_stats, fake_stats = RunningStatistics(), RunningStatistics()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test, range(args.N)), batch_size=args.batch_size,
                                         shuffle=False, num_workers=args.num_threads)
    per_batch = {k: [] for k in METRICS}
    done = 0
    for batch_index, x in enumerate(loader):
        torch.manual_seed(derived_seed(args.seed, batch_index))
        x = x[:, :n_past + n_future].to(device)
        posterior = model.posterior_rollout(x, n_past)
        ss, ps, best, randoms = evaluate_batch(model, x, n_past, n_future, args.nsample, args.rollout_batch,
                                               args.ssim, gen)
        truth, post = x[:, n_past:], posterior[:, n_past:]
        for name, values in best_of_n(ss.cpu(), ps.cpu()).items():         # each (B, n_future)
            per_batch[name].append(values)
        per_batch["ssim_posterior"].append(ssim(post, truth, args.ssim).cpu())
        per_batch["psnr_posterior"].append(psnr(post, truth).cpu())
        if not args.no_gifs:
            for b in range(x.shape[0]):
                write_sequence_visuals(args.log_dir, done + b, x[b].cpu(), posterior[b].cpu(), best[b].cpu(),
                                       randoms[b].cpu(), n_past)
        real_stats.update(fd_calc.extract_features(truth))
        fake_stats.update(fd_calc.extract_features(randoms[:, 0, n_past:]))
        done += x.shape[0]
        print(f"evaluated {done}/{args.N} sequences", flush=True)
    metrics = {k: torch.cat(v).double() for k, v in per_batch.items()}
    if fake_stats.n < 2:  # reported, not fatal: the metrics above are what the run is for
        return metrics, None, fake_stats.n
    (mu_r, s_r, _), (mu_f, s_f, n_frames) = real_stats.result(), fake_stats.result()
    return metrics, frechet_distance_from_statistics(mu_r, s_r, mu_f, s_f), n_frames


def write_outputs(args, ckpt, metrics, summary_rows, fd_value, n_past, n_future, test_digits=None):
    """metrics.csv, metrics_summary.csv, metrics_vs_time.png and summary.json; returns the summary."""
    N = next(iter(metrics.values())).shape[0]
    with open(os.path.join(args.log_dir, "metrics.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["sequence", "t", *METRICS])
        w.writeheader()
        w.writerows({"sequence": i, "t": n_past + t, **{k: metrics[k][i, t].item() for k in METRICS}}
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
        "protocol": args.protocol, "averages": {k: metrics[k].mean().item() for k in METRICS},
        "frechet_distance_svg_encoder": fd_value, "test_digit_source": test_digits,
        "train_digit_source": ckpt.get("digit_source"),
    }
    write_json(os.path.join(args.log_dir, "summary.json"), summary)
    return summary


def generate(args):
    """Load, evaluate, summarise, write: the whole of generate_svg_lp.py."""
    model, ckpt, device, test, n_past, n_future = load(args)
    writable_folder(args.log_dir, "--log_dir")  # before any sampling
    metrics, fd_value, n_frames = evaluate(args, model, device, test, n_past, n_future)
    summary = write_outputs(args, ckpt, metrics, summarise(metrics, n_past), fd_value, n_past, n_future,
                            getattr(test, "digit_source", None))
    print(json.dumps(summary["averages"], indent=1))
    if fd_value is None:
        print(f"Fréchet distance: not computed (it needs at least 2 frames per set, got {n_frames}; raise --N or "
              f"--n_future)", file=sys.stderr)
        return summary
    print(f"Fréchet distance (this model's encoder, one random sample per sequence vs the real frames, "
          f"{n_frames} frames each): {fd_value:.4f}")
    if n_frames <= model.config.g_dim:
        print(f"warning: the Fréchet distance rests on {n_frames} frames, not more than the feature dimension "
              f"{model.config.g_dim}: the covariance is singular and the value strongly biased; raise --N",
              file=sys.stderr)
    return summary


def main(argv=None):
    args = parse_args(argv)
    try:
        return generate(args)
    except (UsageError, CheckpointError, DataError, DeviceError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
