"""Convert KTH action videos to PNG frames and write the train/test split (replaces the 2018 Lua script).

    python data/convert_kth.py --data_dir DIR --image_size 64

Decodes DIR/raw/<class>/personNN_<class>_dK_uncomp.avi with the ffmpeg binary shipped by the
imageio-ffmpeg package (no system ffmpeg, no Lua) at 25 fps, resized to a square, grayscale, into
DIR/processed/<class>/<video>/image-<nnn>_<W>x<W>.png. Writes DIR/processed/{train,test}_meta<W>x<W>.json:
persons 1-20 train, 21-25 test (as the 2018 loader). Segments come from KTH's 00sequences.txt
(in DIR or DIR/raw) when present, otherwise whole videos. Each video is decoded into a temporary
folder and renamed when complete; re-running skips finished videos; a file ffmpeg cannot decode is
reported by name and the run goes on.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data import run_conversion  # noqa: E402

CLASSES = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
TRAIN_PERSONS = range(1, 21)
TEST_PERSONS = range(21, 26)
FRAME_RATE = 25
VIDEO_RE = re.compile(r"^(person(\d+)_([a-z]+)_d(\d+))(_uncomp)?\.avi$")


def frame_name(index, size):
    return f"image-{index:03d}_{size}x{size}.png"


def read_sequence_annotations(data_dir):
    """{video name: [(first, last), ...]} from 00sequences.txt (1-based, inclusive), or {}."""
    for path in (os.path.join(data_dir, "00sequences.txt"), os.path.join(data_dir, "raw", "00sequences.txt")):
        if os.path.isfile(path):
            segments = {}
            with open(path) as f:
                for line in f:
                    m = re.match(r"^\s*(person\d+_[a-z]+_d\d+)\s+frames\s+(.+)$", line)
                    if m:
                        segments[m.group(1)] = [tuple(int(v) for v in r.split("-"))
                                                for r in re.findall(r"\d+\s*-\s*\d+", m.group(2).replace(" ", ""))]
            return segments
    return {}


def decode(ffmpeg, avi, out_dir, size):
    tmp = out_dir + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    cmd = [ffmpeg, "-v", "error", "-nostdin", "-i", avi, "-r", str(FRAME_RATE), "-vf", f"scale={size}:{size}",
           "-pix_fmt", "gray", "-f", "image2", os.path.join(tmp, f"image-%03d_{size}x{size}.png")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not os.listdir(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        reason = (res.stderr.strip().splitlines() or ["no frames decoded"])[-1]
        raise RuntimeError(reason)
    os.replace(tmp, out_dir)


def convert(data_dir, size):
    """Decode every video and write the split files; returns [(file, error)] for failures."""
    import imageio_ffmpeg
    import progressbar
    raw = os.path.join(data_dir, "raw")
    if not os.path.isdir(raw):
        raise FileNotFoundError(f"'{raw}' does not exist; download the videos first: bash data/download_kth.sh {data_dir}")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    annotations = read_sequence_annotations(data_dir)
    failures, meta = [], {"train": [], "test": []}
    jobs = [(c, f) for c in CLASSES if os.path.isdir(os.path.join(raw, c))
            for f in sorted(os.listdir(os.path.join(raw, c))) if f.endswith(".avi")]
    if not jobs:
        raise FileNotFoundError(f"no .avi files under '{raw}/<class>/'")
    for c, fname in progressbar.progressbar(jobs, prefix=f"KTH {size}x{size} "):
        m = VIDEO_RE.match(fname)
        if not m:
            failures.append((os.path.join(raw, c, fname), "name is not personNN_<action>_dK_uncomp.avi"))
            continue
        video, person = m.group(1), int(m.group(2))
        out = os.path.join(data_dir, "processed", c, video)
        if not os.path.isdir(out) or not any(n.endswith(f"_{size}x{size}.png") for n in os.listdir(out)):
            try:
                if os.path.isdir(out):  # converted at another size: decode into the same folder
                    tmp_out = out + f".{size}"
                    decode(ffmpeg, os.path.join(raw, c, fname), tmp_out, size)
                    for n in os.listdir(tmp_out):
                        os.replace(os.path.join(tmp_out, n), os.path.join(out, n))
                    os.rmdir(tmp_out)
                else:
                    decode(ffmpeg, os.path.join(raw, c, fname), out, size)
            except RuntimeError as err:
                failures.append((os.path.join(raw, c, fname), str(err)))
                continue
        n_frames = sum(1 for n in os.listdir(out) if n.endswith(f"_{size}x{size}.png"))
        segments = [(a, min(b, n_frames)) for a, b in annotations.get(video, [(1, n_frames)]) if a <= n_frames]
        split = "train" if person in TRAIN_PERSONS else "test" if person in TEST_PERSONS else None
        if split:
            meta[split].append({"class": c, "vid": video, "person": person, "n_frames": n_frames,
                                "segments": [list(s) for s in segments]})
    for split, videos in meta.items():
        path = os.path.join(data_dir, "processed", f"{split}_meta{size}x{size}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(videos, f, indent=1)
        os.replace(path + ".tmp", path)
    return failures


def main(argv=None):
    p = argparse.ArgumentParser(description="Convert KTH .avi videos to PNG frames and split files.")
    p.add_argument("--data_dir", required=True, help="folder holding raw/<class>/*.avi")
    p.add_argument("--image_size", type=int, default=64, choices=(64, 128))
    args = p.parse_args(argv)
    return run_conversion(convert, args.data_dir, args.image_size)


if __name__ == "__main__":
    sys.exit(main())
