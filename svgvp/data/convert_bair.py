"""Convert the BAIR robot pushing TFRecords to PNG frames.

    svg-convert-bair --data_dir DIR

Reads DIR/softmotion30_44k/{train,test}/*.tfrecords (feature '{t}/image_aux1/encoded': 64x64x3
raw RGB bytes, t = 0..29) and writes DIR/processed_data/{train,test}/<record name>/<k>/<t>.png with
the pixels exactly as stored. Each sequence is written to a temporary folder and renamed when
complete, so an interrupted run leaves nothing a later run or the loader takes as complete;
re-running skips finished sequences. A corrupt record file is reported by name and skipped; so is
a file named ``traj_<first>_to_<last>.tfrecords`` (BAIR's names) that holds fewer records than its name
states (a download cut on a record boundary), whose converted sequences are removed so that the
loader never takes it as complete and the next run converts it again.
Needs TensorFlow (only here): pip install -e ".[bair]".
"""
import os
import re
import shutil
import sys

import imageio.v3 as iio
import numpy as np

from svgvp.command_line import OneLineArgumentParser
from svgvp.data import BAIR_FRAMES as FRAMES
from svgvp.data import run_conversion

SIZE = 64
TRAJ_NAME = re.compile(r"traj_(\d+)_to_(\d+)")  # BAIR's files: traj_<first>_to_<last>.tfrecords, 256 each


def expected_records(record):
    """The number of trajectories a BAIR file name states, or None for other names."""
    m = TRAJ_NAME.fullmatch(record)
    if not m or int(m.group(2)) < int(m.group(1)):
        return None
    return int(m.group(2)) - int(m.group(1)) + 1


def import_tensorflow():
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
    except ImportError:
        sys.exit('error: TensorFlow is needed to read the BAIR TFRecords; install it with: pip install -e ".[bair]"')
    return tf


def frames_of(example_bytes, tf):
    example = tf.train.Example.FromString(example_bytes)
    feats = example.features.feature
    frames = []
    for t in range(FRAMES):
        key = f"{t}/image_aux1/encoded"
        if key not in feats:
            raise ValueError(f"record has no feature '{key}'")
        raw = feats[key].bytes_list.value[0]
        frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(SIZE, SIZE, 3))
    return frames


def write_sequence(out_dir, frames):
    tmp = out_dir + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for t, frame in enumerate(frames):
        iio.imwrite(os.path.join(tmp, f"{t}.png"), frame)
    os.replace(tmp, out_dir)


def convert(data_dir):
    """Convert every split; returns the list of (file, error) for files that failed."""
    src_root = os.path.join(data_dir, "softmotion30_44k")
    if not os.path.isdir(src_root):
        raise FileNotFoundError(f"'{src_root}' does not exist; download the data first: "
                                f"bash svgvp/data/download_bair.sh {data_dir}")
    failures = []
    listed = {split: sorted(f for f in os.listdir(os.path.join(src_root, split)) if f.endswith(".tfrecords")
                            and os.path.isfile(os.path.join(src_root, split, f)))
              for split in ("train", "test") if os.path.isdir(os.path.join(src_root, split))}
    if not any(listed.values()):
        raise FileNotFoundError(f"'{src_root}' holds no train/ or test/ .tfrecords files; download the data "
                                f"first: bash svgvp/data/download_bair.sh {data_dir}")
    tf = import_tensorflow()  # after the folder checks: a wrong path is said at once, without TensorFlow
    import progressbar
    for split, files in listed.items():
        split_dir = os.path.join(src_root, split)
        bar = progressbar.ProgressBar(max_value=len(files), prefix=f"{split} ")
        for n, fname in enumerate(bar(files)):
            record = os.path.splitext(fname)[0]
            out_root = os.path.join(data_dir, "processed_data", split, record)
            if os.path.getsize(os.path.join(split_dir, fname)) == 0:
                failures.append((os.path.join(split_dir, fname), "empty file (0 bytes); download it again"))
                continue
            try:
                count = 0
                for k, raw in enumerate(tf.data.TFRecordDataset(os.path.join(split_dir, fname))):
                    count = k + 1
                    out = os.path.join(out_root, str(k))
                    if os.path.isdir(out):
                        continue  # converted by an earlier run
                    os.makedirs(out_root, exist_ok=True)
                    write_sequence(out, frames_of(raw.numpy(), tf))
            except Exception as err:  # noqa: BLE001 - report the file and go on with the others
                failures.append((os.path.join(split_dir, fname), f"{type(err).__name__}: {str(err).splitlines()[0]}"))
                continue
            expected = expected_records(record)
            if expected is not None and count < expected:
                shutil.rmtree(out_root, ignore_errors=True)  # incomplete: nothing of it counts as converted
                failures.append((os.path.join(split_dir, fname), f"holds {count} records but its name states "
                                 f"{expected}; the file is incomplete (a cut download): download it again"))
    return failures


def main(argv=None):
    p = OneLineArgumentParser(description="Convert BAIR TFRecords to PNG frames.")
    p.add_argument("--data_dir", required=True, help="folder holding softmotion30_44k/")
    args = p.parse_args(argv)
    return run_conversion(convert, args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
