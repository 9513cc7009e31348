"""Small shared helpers: device choice, seeding, image grids, PNG and GIF writing, atomic files, folder locks."""
import hashlib
import json
import os
import tempfile

import imageio.v3 as iio
import numpy as np
import torch


class UsageError(Exception):
    """A bad flag or combination of flags; the scripts report it as one line with exit code 2."""


class DeviceError(ValueError):
    """A device name that is malformed or not present on this machine."""


def choose_device(name="auto"):
    """'auto' -> CUDA when present, else CPU; otherwise the named device, checked to exist here."""
    name = "auto" if name is None else str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "gpu":
        name = "cuda"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{name}' asked for, but CUDA is not available on this machine; use "
                              f"--device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} "
                              f"GPU(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif device.type != "cpu":
        raise DeviceError(f"device '{name}' is not supported; use auto, cpu, cuda or cuda:N")
    return device


def cpu_has_bfloat16():
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere PyTorch emulates it,
    about 40x slower than float32 on a 2-core AVX2 EPYC."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def refuse_emulated_bfloat16(device, work):
    """--amp on a CPU without bfloat16 units would make ``work`` tens of times slower: a UsageError says so."""
    if device.type == "cpu" and not cpu_has_bfloat16():
        raise UsageError(f"--amp computes in bfloat16, which this CPU has no units for (no AVX512-BF16 or AMX): "
                         f"{work} would be tens of times slower; pass --no-amp")


def derived_seed(*parts):
    """A 63-bit seed that depends on every part (e.g. seed, epoch, rank)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def to_rgb(image):
    """(C, H, W) float tensor in [0, 1] with 1 or 3 channels -> (3, H, W)."""
    image = image.detach().float().cpu().clamp(0, 1)
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def image_grid(rows, padding=1, pad_value=1.0):
    """rows: list of lists of (C, H, W) images of one size -> one (3, H', W') image, white gaps."""
    h, w = rows[0][0].shape[-2:]
    ncol = max(len(r) for r in rows)
    grid = torch.full((3, len(rows) * (h + padding) - padding, ncol * (w + padding) - padding), pad_value)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            grid[:, i * (h + padding): i * (h + padding) + h, j * (w + padding): j * (w + padding) + w] = to_rgb(img)
    return grid


def to_uint8_hwc(image):
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    return (to_rgb(image).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def save_png(path, image):
    iio.imwrite(path, to_uint8_hwc(image))


def save_gif(path, frames, duration_s=0.25):
    """frames: list of (C, H, W) float images in [0, 1]; a looping GIF of uint8 frames."""
    iio.imwrite(path, np.stack([to_uint8_hwc(f) for f in frames]), duration=int(duration_s * 1000), loop=0,
                extension=".gif")


FILE_MODE = 0o644  # rw-r--r--, what a plain open() gives under the common umask 022


def atomic_write(path, write):
    """Call write(tmp_path), then move tmp_path onto path: readers never see a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp creates 0600; set the usual mode explicitly (no process-wide umask swap)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def writable_folder(path, flag):
    """Create folder path (the value of flag) and check that it can be written; else a UsageError naming flag."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} '{path}' is a file; pass a folder")
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        raise UsageError(f"{flag} '{path}' cannot be written ({err.strerror}); pass a writable folder") from None


LOCK_NAME = ".lock"


class FolderBusy(Exception):
    """Another live process holds the folder's lock; ``owner`` is its pid as it wrote it (or "unknown")."""

    def __init__(self, owner):
        super().__init__(owner)
        self.owner = owner


def lock_folder(directory):
    """Take the exclusive lock of an existing folder: an ``flock`` on ``<directory>/.lock``, which holds this
    process's pid, kept while the returned file stays open. The kernel drops it when the process dies, so
    a killed process leaves no stale lock. Raises FolderBusy if another process holds it (no lock on
    systems without ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks
        fcntl = None
    f = open(os.path.join(directory, LOCK_NAME), "a+")
    if fcntl is not None:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise FolderBusy(owner) from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def file_sha256(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
    atomic_write(path, write)


def framed(image, color, pad=2):
    """(C, H, W) image in [0, 1] -> (3, H+2pad, W+2pad) with a tinted border ('green', 'red' or 'none')."""
    tint = {"green": (0.0, 0.7, 0.0), "red": (0.7, 0.0, 0.0), "none": (1.0, 1.0, 1.0)}[color]
    h, w = image.shape[-2:]
    out = torch.tensor(tint).view(3, 1, 1).repeat(1, h + 2 * pad, w + 2 * pad)
    out[:, pad:pad + h, pad:pad + w] = to_rgb(image)
    return out


def labelled_row(images, labels, font_px=None):
    """Images side by side with a text label under each: -> (3, H', W') for a GIF frame."""
    from PIL import Image, ImageDraw, ImageFont
    h, w = images[0].shape[-2:]
    font_px = font_px or max(9, w // 7)  # readable at 64x64 and 128x128 frames
    font = ImageFont.load_default(size=font_px)
    bar = 2 * font_px + 8
    row = torch.ones(3, h + bar, len(images) * w)
    for k, img in enumerate(images):
        row[:, :h, k * w:(k + 1) * w] = to_rgb(img)
    pil = Image.fromarray(to_uint8_hwc(row))
    draw = ImageDraw.Draw(pil)
    for k, text in enumerate(labels):
        draw.multiline_text((k * w + 3, h + 3), text, fill=(0, 0, 0), font=font, spacing=1)
    return torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float() / 255


def labelled_grid(rows, labels, font_px=None):
    """Rows of equally sized images with a text label left of each row: -> (3, H', W') for a PNG."""
    from PIL import Image, ImageDraw, ImageFont
    grid = image_grid(rows)
    h = rows[0][0].shape[-2]
    font_px = font_px or max(9, h // 6)
    font = ImageFont.load_default(size=font_px)
    margin = 6 * font_px
    canvas = torch.ones(3, grid.shape[1], margin + grid.shape[2])
    canvas[:, :, margin:] = grid
    pil = Image.fromarray(to_uint8_hwc(canvas))
    draw = ImageDraw.Draw(pil)
    for i, text in enumerate(labels):
        draw.multiline_text((3, i * (h + 1) + 3), text, fill=(0, 0, 0), font=font, spacing=1)
    return torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float() / 255
