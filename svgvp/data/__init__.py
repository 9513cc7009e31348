"""Dataset loaders. Every dataset yields float32 sequences (T, C, H, W) in [0, 1]."""
import os

DATASETS = ("smmnist", "bair", "kth")
DATASET_CHANNELS = {"smmnist": 1, "bair": 3, "kth": 1}
BAIR_FRAMES = 30  # frames recorded per BAIR trajectory


def kth_frame_name(index, size):
    """A KTH frame's file name: index (1-based) as an int, or ffmpeg's '%03d' pattern for the decoder."""
    number = index if isinstance(index, str) else f"{index:03d}"
    return f"image-{number}_{size}x{size}.png"


class DataError(Exception):
    """A dataset cannot be used as asked (missing folder, wrong settings); the message says why."""


def run_conversion(convert, *args):
    """Run a converter's convert(*args) for a command line: exit code 2 when its input folder is
    missing, 1 when some files failed (each reported by name), 0 when everything converted."""
    import sys
    try:
        failures = convert(*args)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path, err in failures:
        print(f"error: could not convert {path}: {err}", file=sys.stderr)
    return 1 if failures else 0


def load_dataset(dataset, data_root, train_len, test_len, image_width=64, num_digits=2, seed=1,
                 mnist_source="auto"):
    """(train, test) datasets. Train sequence k is a pure function of (seed, k); test is fixed."""
    if dataset == "smmnist":
        from svgvp.data.moving_mnist import MovingMNIST
        common = dict(data_root=data_root, num_digits=num_digits, image_size=image_width,
                      deterministic=False, mnist_source=mnist_source)
        return (MovingMNIST(train=True, seq_len=train_len, seed=seed, **common),
                MovingMNIST(train=False, seq_len=test_len, **common))
    if dataset in ("bair", "kth"):
        if not os.path.isdir(data_root):
            raise DataError(f"data folder '{data_root}' for {dataset} does not exist; "
                            f"download and convert the data first (see README, 'Datasets')")
        if dataset == "bair":
            from svgvp.data.bair import RobotPush
            return (RobotPush(data_root, train=True, seq_len=train_len, image_size=image_width, seed=seed),
                    RobotPush(data_root, train=False, seq_len=test_len, image_size=image_width))
        from svgvp.data.kth import KTH
        return (KTH(data_root, train=True, seq_len=train_len, image_size=image_width, seed=seed),
                KTH(data_root, train=False, seq_len=test_len, image_size=image_width))
    raise DataError(f"unknown dataset '{dataset}'; choose one of {', '.join(DATASETS)}")
