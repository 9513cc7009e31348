"""Convert KTH action videos to PNG frames and write the train/test split (replaces the 2018 Lua script).

    svg-convert-kth --data_dir DIR --image_size 64

Decodes DIR/raw/<class>/personNN_<class>_dK_uncomp.avi with the ffmpeg binary shipped by the
imageio-ffmpeg package (no system ffmpeg, no Lua) at 25 fps, resized to a square, grayscale, into
DIR/processed/<class>/<video>/image-<nnn>_<W>x<W>.png. Writes DIR/processed/{train,test}_meta<W>x<W>.json:
persons 1-20 train, 21-25 test (as the 2018 loader). Segments come from KTH's 00sequences.txt
(in DIR or DIR/raw) when present, otherwise whole videos. Each video is decoded into a temporary
folder and renamed when complete; re-running skips finished videos; a file ffmpeg cannot decode is
reported by name and the run goes on.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys

from svgvp.command_line import OneLineArgumentParser
from svgvp.data import kth_frame_name, run_conversion

CLASSES = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
TRAIN_PERSONS = range(1, 21)
TEST_PERSONS = range(21, 26)
FRAME_RATE = 25
VIDEO_RE = re.compile(r"^(person(\d+)_([a-z]+)_d(\d+))(_uncomp)?\.avi$")  # matched on the lower-cased name


def read_sequence_annotations(data_dir):
    """{video name: [(first, last), ...]} from 00sequences.txt (1-based, inclusive), or {}."""
    for path in (os.path.join(data_dir, "00sequences.txt"), os.path.join(data_dir, "raw", "00sequences.txt")):
        if os.path.isfile(path):
            segments = {}
            # KTH's file is ASCII; a stray byte (an edited or re-encoded copy) must not stop the conversion
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = re.match(r"^\s*(person\d+_[a-z]+_d\d+)\s+frames\s+(.+)$", line)
                    if m:
                        segments[m.group(1)] = [tuple(int(v) for v in r.split("-"))
                                                for r in re.findall(r"\d+\s*-\s*\d+", m.group(2).replace(" ", ""))]
            return segments
    return {}


def avi_header_frames(avi):
    """(frames, frames per second) from the AVI main header ('avih'), or None if it has none."""
    with open(avi, "rb") as f:
        head = f.read(1 << 16)
    i = head.find(b"avih")
    if head[:4] != b"RIFF" or i < 0 or len(head) < i + 28:
        return None
    usec_per_frame, _, _, _, total = struct.unpack("<IIIII", head[i + 8:i + 28])
    return (total, 1e6 / usec_per_frame) if usec_per_frame and total else None


def complete_marker(out_dir, size):
    return os.path.join(out_dir, f".complete_{size}x{size}")


def decode(ffmpeg, avi, out_dir, size):
    """Decode avi into out_dir at size x size; raises RuntimeError if ffmpeg reports an error or the
    video has fewer frames than its header announces. The marker file is written last."""
    tmp = f"{out_dir}.partial{size}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    cmd = [ffmpeg, "-v", "error", "-nostdin", "-i", avi, "-r", str(FRAME_RATE), "-vf", f"scale={size}:{size}",
           "-pix_fmt", "gray", "-f", "image2", os.path.join(tmp, kth_frame_name("%03d", size))]
    res = subprocess.run(cmd, capture_output=True, text=True)
    decoded = len(os.listdir(tmp))
    expected = avi_header_frames(avi)
    reason = None
    if res.returncode != 0 or res.stderr.strip():
        reason = "ffmpeg: " + (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[0]
    elif decoded == 0:
        reason = "no frames decoded"
    elif expected is not None and decoded < round(expected[0] * FRAME_RATE / expected[1]) - 1:
        reason = f"decoded {decoded} of the {expected[0]} frames its header announces (truncated file?)"
    if reason:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(reason)
    os.makedirs(out_dir, exist_ok=True)
    for n in os.listdir(tmp):
        os.replace(os.path.join(tmp, n), os.path.join(out_dir, n))
    os.rmdir(tmp)
    open(complete_marker(out_dir, size), "w").close()


def convert(data_dir, size):
    """Decode every video and write the split files; returns [(file, error)] for failures."""
    import imageio_ffmpeg
    import progressbar
    raw = os.path.join(data_dir, "raw")
    if not os.path.isdir(raw):
        raise FileNotFoundError(f"'{raw}' does not exist; download the videos first: bash svgvp/data/download_kth.sh {data_dir}")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    annotations = read_sequence_annotations(data_dir)
    failures, meta = [], {"train": [], "test": []}
    jobs = [(c, f) for c in CLASSES if os.path.isdir(os.path.join(raw, c))
            for f in sorted(os.listdir(os.path.join(raw, c)))
            if f.lower().endswith(".avi") and os.path.isfile(os.path.join(raw, c, f))]
    if not jobs:
        raise FileNotFoundError(f"no .avi files under '{raw}/<class>/'")
    for c, fname in progressbar.progressbar(jobs, prefix=f"KTH {size}x{size} "):
        m = VIDEO_RE.match(fname.lower())
        if not m:
            failures.append((os.path.join(raw, c, fname), "name is not personNN_<action>_dK_uncomp.avi"))
            continue
        video, person = m.group(1), int(m.group(2))
        out = os.path.join(data_dir, "processed", c, video)
        if not os.path.exists(complete_marker(out, size)):
            try:
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
    p = OneLineArgumentParser(description="Convert KTH .avi videos to PNG frames and split files.")
    p.add_argument("--data_dir", required=True, help="folder holding raw/<class>/*.avi")
    p.add_argument("--image_size", type=int, default=64, choices=(64, 128), help="frame size to convert to")
    args = p.parse_args(argv)
    return run_conversion(convert, args.data_dir, args.image_size)


if __name__ == "__main__":
    sys.exit(main())
