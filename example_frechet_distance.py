"""Fréchet distance on Stochastic Moving MNIST with the SVG encoder, in seven steps.

    python example_frechet_distance.py [--model_path pretrained_models/svglp_smmnist2.pth] [--out_dir .]

Runs offline in about a minute on 2 CPU cores and writes frechet_distance_example.png,
frechet_distance_vs_noise.png and frechet_distance_vs_time.png.
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from svgvp.command_line import OneLineArgumentParser  # noqa: E402
from svgvp.data import DataError  # noqa: E402
from svgvp.data.moving_mnist import TEST_LENGTH, MovingMNIST  # noqa: E402
from svgvp.data.package_files import default_cache_dir  # noqa: E402
from svgvp.metrics.frechet import FrechetDistanceCalculator, InputError  # noqa: E402
from svgvp.training.checkpoint import CheckpointError  # noqa: E402
from svgvp.utils import DeviceError, UsageError, writable_folder  # noqa: E402


def line_plot(path, x, y, xlabel, title):
    plt.figure(figsize=(5, 3.5))
    plt.plot(x, y, "o-")
    plt.xlabel(xlabel)
    plt.ylabel("Fréchet distance")
    plt.title(title)
    plt.tight_layout()
    plt.savefig(path, dpi=80)
    plt.close()


def main(argv=None):
    p = OneLineArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_path", default=None, help="SVG checkpoint (default: the shipped SM-MNIST model)")
    p.add_argument("--out_dir", default=".", help="folder for the three PNG plots")
    p.add_argument("--data_root", default=os.path.join(default_cache_dir(), "data"),
                   help="where the MNIST digits are cached (default: the shared cache folder, $SVG_CACHE_DIR)")
    p.add_argument("--num_sequences", type=int, default=256, help="SM-MNIST test sequences to compare")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: CUDA when present)")
    args = p.parse_args(argv)
    try:
        check_args(args)
        return run(args)
    except (UsageError, InputError, DataError, CheckpointError, DeviceError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def check_args(args):
    """Refuse what would fail after the work: too few sequences, an --out_dir that cannot be written."""
    if not 2 <= args.num_sequences <= TEST_LENGTH:
        raise UsageError(f"--num_sequences must be between 2 and {TEST_LENGTH} (a distance compares sets of at "
                         f"least 2 frames), got {args.num_sequences}")
    writable_folder(args.out_dir, "--out_dir")


def compared_sets_plot(path, first, last, noisy, d_first_last, d_noisy):
    """Six images of each compared set, with the two distances in the title."""
    fig, axes = plt.subplots(3, 6, figsize=(9, 5))
    for j in range(6):
        for i, (imgs, name) in enumerate(((first, "first"), (last, "last"), (noisy, "noisy"))):
            axes[i, j].imshow(imgs[j, 0].numpy(), cmap="gray", vmin=0, vmax=1)  # numpy: a tensor warns in matplotlib
            axes[i, j].axis("off")
            if j == 0:
                axes[i, j].set_title(name, loc="left", fontsize=9)
    fig.suptitle(f"FD(first, last) = {d_first_last:.3f}   FD(first, noisy) = {d_noisy:.3f}")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def time_gap_plot(path, gaps, by_gap, paired):
    """The Fréchet distance of the sets and the paired distance against the time gap, on two axes."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(gaps, by_gap, "o-", label="Fréchet distance (sets)")
    ax.set_xlabel("time gap (frames)")
    ax.set_ylabel("Fréchet distance")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    twin = ax.twinx()
    twin.plot(gaps, paired, "s--", color="tab:orange", label="paired distance (per sequence)")
    twin.set_ylabel("mean squared feature distance")
    fig.legend(loc="lower right", fontsize=8)
    ax.set_title("Frame 0 vs frame k")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run(args):
    """The seven steps; returns the distances it printed."""
    # 1. The feature extractor: the SVG encoder, loaded once and cached.
    calc = FrechetDistanceCalculator(model_path=args.model_path, device=args.device)

    # 2. Stochastic Moving MNIST test sequences (fixed set; offline digits when MNIST is not on disk).
    data = MovingMNIST(train=False, data_root=args.data_root, seq_len=20, num_digits=2)
    videos = torch.stack([data[k] for k in range(args.num_sequences)])            # (N, T, 1, 64, 64)
    first, last = videos[:, 0], videos[:, -1]

    # 3. First frames against last frames of the same sequences.
    d_first_last = calc(first, last)
    print(f"first vs last frames:       {d_first_last:.6g}")

    # 4. A noisy copy of the first frames.
    gen = torch.Generator().manual_seed(0)
    noisy = (first + 0.2 * torch.randn(first.shape, generator=gen)).clamp(0, 1)
    d_noisy = calc(first, noisy)
    print(f"first frames vs noisy copy: {d_noisy:.6g}")

    # 5. A picture of what was compared.
    compared_sets_plot(os.path.join(args.out_dir, "frechet_distance_example.png"), first, last, noisy,
                       d_first_last, d_noisy)

    # 6. Distance against noise level: it rises with the noise.
    levels = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5]
    by_noise = [calc(first, (first + s * torch.randn(first.shape, generator=gen)).clamp(0, 1)) for s in levels]
    line_plot(os.path.join(args.out_dir, "frechet_distance_vs_noise.png"), levels, by_noise,
              "noise standard deviation", "First frames vs noisy copies")

    # 7. Distance against the time gap: frame 0 vs frame k of the same sequences. The Fréchet distance
    #    compares the two sets' distributions, and the marginal distribution of Moving MNIST frames
    #    mixes within a few steps (every frame is "two digits somewhere"), so it saturates. The paired
    #    distance, the mean squared feature distance between frame 0 and frame k of each sequence,
    #    follows the individual videos and keeps growing with the gap.
    gaps = list(range(0, videos.shape[1], 2))
    by_gap = [calc(first, videos[:, k]) for k in gaps]
    f0 = calc.extract_features(first)
    paired = [float(((calc.extract_features(videos[:, k]) - f0) ** 2).sum(1).mean()) for k in gaps]
    time_gap_plot(os.path.join(args.out_dir, "frechet_distance_vs_time.png"), gaps, by_gap, paired)
    print("noise levels:", dict(zip(levels, [float(f"{v:.4g}") for v in by_noise])))
    print("time gaps:   ", dict(zip(gaps, [float(f"{v:.4g}") for v in by_gap])))
    print("paired:      ", dict(zip(gaps, [float(f"{v:.4g}") for v in paired])))
    print("The Fréchet distance compares distributions: frames of Moving MNIST look alike as a set after a few\n"
          "steps, so it flattens with the gap; the paired distance follows each sequence and keeps growing.")
    print(f"plots written to {os.path.abspath(args.out_dir)}: frechet_distance_example.png, "
          f"frechet_distance_vs_noise.png, frechet_distance_vs_time.png")
    return {"first_last": d_first_last, "noisy": d_noisy, "by_noise": by_noise, "by_gap": by_gap, "paired": paired}


if __name__ == "__main__":
    main()
