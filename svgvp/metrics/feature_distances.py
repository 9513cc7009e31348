"""The mathematics of feature distances, on features alone: statistics, the Fréchet distance, KID.

Shared by every feature extractor (the SVG encoder in ``frechet.py``, I3D in ``frechet_video.py``),
whose calculators get their common methods from ``FeatureSets``. Statistics are
accumulated in float64 (``RunningStatistics``); the Fréchet distance uses an exact trace (no
``sqrtm``); inputs are checked to be real, finite numbers of matching shapes.
"""
import os
import warnings
import zipfile

import numpy as np


class InputError(ValueError):
    """Inputs that cannot be compared as given; the message names the problem and the fix."""


PSD_TOLERANCE = 1e-8  # relative: asymmetry and negative eigenvalues allowed in a covariance, for rounding
# relative to tr(S1) + tr(S2) + ||mu1 - mu2||^2: how far below 0 rounding may take a distance (float64 sums of
# at most a few thousand terms err by ~1e-13 of that scale); such a value is reported as 0.0, a larger
# negative one would mean a bug and raises
NEGATIVE_TOLERANCE = 1e-9


def _non_negative(value, scale):
    """The Fréchet distance, which is mathematically >= 0: rounding just below 0 becomes 0.0."""
    if value >= 0:
        return float(value)
    if value >= -NEGATIVE_TOLERANCE * max(scale, 1e-300):
        return 0.0
    raise RuntimeError(f"the Fréchet distance came out at {value:.3g}, below zero by more than rounding allows "
                       f"(scale {scale:.3g}); this is a bug, please report it with the inputs")


def _has_features(d, what):
    if d == 0:
        raise InputError(f"{what} have dimension 0: there is nothing to compare; give features of at least 1 dimension")


def real_array(values, name):
    """values as a float64 array; complex, text, object or boolean values are an InputError."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor (any device, with or without grad)
        values = values.detach().cpu()
        values = (values.double() if values.is_floating_point() else values).numpy()  # bfloat16 has no numpy type
    try:
        a = np.asarray(values)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} is not an array of numbers ({err})") from None
    if a.dtype.kind not in "iuf":
        raise InputError(f"{name} must hold real numbers, got dtype {a.dtype}"
                         + ("; the imaginary part would be dropped" if a.dtype.kind == "c" else ""))
    return a.astype(np.float64)


def frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2), in float64.

    With any factors B B^T = S (Cholesky, or the eigen-decomposition when S is singular),
    tr((S1 S2)^1/2) is the nuclear norm (sum of singular values) of B1^T B2. No
    ``scipy.linalg.sqrtm``, so the result is always real, and no product S1^1/2 S2 S1^1/2 whose
    small eigenvalues would lose half their digits. Each sigma must be
    symmetric positive semi-definite to a relative tolerance of PSD_TOLERANCE. Rounding can take
    the result of (near-)identical statistics just below zero: within NEGATIVE_TOLERANCE of the
    terms' scale it is reported as 0.0; further below, an error is raised.
    """
    mu1, mu2 = np.atleast_1d(real_array(mu1, "mu1")), np.atleast_1d(real_array(mu2, "mu2"))
    s1, s2 = np.atleast_2d(real_array(sigma1, "sigma1")), np.atleast_2d(real_array(sigma2, "sigma2"))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise InputError(f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    _has_features(mu1.size, "the statistics")
    for name, a in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.all(np.isfinite(a)):
            raise InputError(f"{name} contains NaN or infinite values")
    b1, b2 = _covariance_factor(s1, "sigma1"), _covariance_factor(s2, "sigma2")
    trace_sqrt = np.linalg.svd(b1.T @ b2, compute_uv=False).sum()
    mean_term, traces = ((mu1 - mu2) ** 2).sum(), np.trace(s1) + np.trace(s2)
    return _non_negative(mean_term + traces - 2 * trace_sqrt, mean_term + traces)


def _covariance_factor(s, name):
    """B with B B^T = s; raises InputError if s is not symmetric positive semi-definite.

    Cholesky when s is positive definite (fast, and unaffected by the scale of each dimension);
    otherwise V diag(sqrt(w)) from the symmetric eigen-decomposition.
    """
    scale = np.abs(s).max()
    if np.abs(s - s.T).max() > PSD_TOLERANCE * max(scale, 1e-300):
        raise InputError(f"{name} is not symmetric; pass a covariance matrix")
    s = (s + s.T) / 2
    try:
        return np.linalg.cholesky(s)
    except np.linalg.LinAlgError:  # singular (fewer samples than dimensions) or not PSD: decide below
        pass
    w, v = np.linalg.eigh(s)
    if w.size and w.min() < -PSD_TOLERANCE * max(np.abs(w).max(), 1e-300):
        raise InputError(f"{name} is not positive semi-definite (eigenvalue {w.min():.3g}); pass a covariance matrix")
    return v * np.sqrt(np.clip(w, 0, None))


def frechet_distance_from_features(f1, f2):
    """Fréchet distance between two feature sets (N1, d) and (N2, d), in float64.

    With no more samples than dimensions (the covariance is then singular: rank N - 1) it uses the
    nuclear-norm form, tr((S1 S2)^1/2) =
    ||X1c X2c^T||_* / sqrt((N1-1)(N2-1)), which is exact and works on N x N matrices.
    """
    f1, f2 = real_array(f1, "the first feature set"), real_array(f2, "the second feature set")
    for name, f in (("first", f1), ("second", f2)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise InputError(f"the {name} feature set must be (N >= 2, d), got shape {f.shape}")
        if not np.isfinite(f).all():
            raise InputError(f"the {name} feature set contains NaN or infinite values")
    if f1.shape[1] != f2.shape[1]:
        raise InputError(f"feature dimensions differ: {f1.shape[1]} vs {f2.shape[1]}")
    _has_features(f1.shape[1], "the features")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    x1, x2 = f1 - mu1, f2 - mu2
    n1, n2 = len(f1), len(f2)
    if min(n1, n2) <= f1.shape[1]:  # the same rule as the small-sample warning
        tr1 = (x1 ** 2).sum() / (n1 - 1)
        tr2 = (x2 ** 2).sum() / (n2 - 1)
        nuclear = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
        mean_term = ((mu1 - mu2) ** 2).sum()
        return _non_negative(mean_term + tr1 + tr2 - 2 * nuclear, mean_term + tr1 + tr2)
    return frechet_distance_from_statistics(mu1, np.cov(x1, rowvar=False), mu2, np.cov(x2, rowvar=False))


KID_SUBSETS = 100        # random subsets the kernel distance is averaged over (KID's usual protocol)
KID_SUBSET_SIZE = 1000   # samples per subset; smaller sets are used whole


def checked_kid_settings(num_subsets, subset_size, seed=0):
    """KID's subset settings as ints, or an InputError naming the one that is wrong."""
    for name, value, least in (("num_subsets", num_subsets, 1), ("subset_size", subset_size, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"{name} must be a whole number, got {value!r}")
        if value < least:
            raise InputError(f"{name} must be at least {least}, got {value}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a whole number of 0 or more, got {seed!r}")
    return int(num_subsets), int(subset_size), int(seed)


def kernel_distance_from_features(f1, f2, num_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0):
    """Unbiased KID (MMD^2 with the kernel (x.y/d + 1)^3) over seeded random subsets: (mean, std error).

    The standard error is that of the mean over the subsets. It is undefined (NaN, with a warning)
    when the subsets cannot differ: one subset, or subsets as large as both sets (then each subset
    is the whole of both sets; use a subset_size below the sets' sizes for an error estimate).
    """
    f1, f2 = real_array(f1, "the first feature set"), real_array(f2, "the second feature set")
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise InputError(f"KID needs two feature sets (N, d) of the same d, got shapes {f1.shape} and {f2.shape}")
    _has_features(f1.shape[1], "the features")
    if not (np.isfinite(f1).all() and np.isfinite(f2).all()):
        raise InputError("KID: the feature sets contain NaN or infinite values")
    num_subsets, subset_size, seed = checked_kid_settings(num_subsets, subset_size, seed)
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise InputError("KID needs at least 2 samples in each set")
    same_subsets = m == len(f1) and m == len(f2)
    d = f1.shape[1]
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for k in range(num_subsets):
        a = f1[rng.choice(len(f1), m, replace=False)]
        b = f2[rng.choice(len(f2), m, replace=False)]
        kaa, kbb, kab = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
        values[k] = ((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
                     - 2 * kab.mean())
    if same_subsets or num_subsets == 1:
        why = ("every subset is the whole of both sets (subset_size >= both sizes)" if same_subsets
               else "there is one subset")
        warnings.warn(f"KID's standard error is undefined: {why}; it is returned as NaN. For an error estimate use "
                      f"num_subsets > 1 and a subset_size below the sets' sizes ({len(f1)}, {len(f2)})", stacklevel=2)
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(num_subsets))


class RunningStatistics:
    """Mean and covariance accumulated batch by batch in float64 (sets larger than memory)."""

    def __init__(self, item="item"):
        self.item = item  # what is counted, for messages: "image", "video"
        self.n, self.shift, self.sum, self.outer = 0, None, None, None

    def update(self, features):
        f = np.asarray(features, np.float64)
        if self.shift is None:
            self.shift = f.mean(0)  # shifting by a first estimate keeps the sums well conditioned
            self.sum = np.zeros_like(self.shift)
            self.outer = np.zeros((f.shape[1], f.shape[1]))
        f = f - self.shift
        self.n += len(f)
        self.sum += f.sum(0)
        self.outer += f.T @ f

    def result(self):
        """(mu, sigma, n)."""
        if self.n < 2:
            raise InputError(f"need at least 2 {self.item}s to compute statistics, got {self.n}")
        mean = self.sum / self.n
        cov = (self.outer - self.n * np.outer(mean, mean)) / (self.n - 1)
        return mean + self.shift, (cov + cov.T) / 2, self.n


IDENTITY_KEYS = ("metric", "feature_dim", "model")  # what produced a statistics file (see FeatureSets.identity)


def save_statistics(path, mu, sigma, n=None, identity=None):
    """Write mu and sigma (and n) to an .npz file, as pytorch-fid, with what produced them
    (``identity``: metric, feature_dim, model); returns the path written (numpy adds '.npz' to a
    name without it)."""
    extra = {} if n is None else {"n": n}
    extra.update({k: np.array(str(v)) for k, v in (identity or {}).items() if k in IDENTITY_KEYS})
    np.savez(path, mu=mu, sigma=sigma, **extra)
    return path if str(path).endswith(".npz") else f"{path}.npz"


def load_statistics(path):
    """(mu, sigma) from an .npz file with real arrays 'mu' (d,) and 'sigma' (d, d)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no statistics file at '{path}'")
    try:
        f = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"'{path}' is not a readable .npz file of statistics ({reason}); write one with "
                         f"--save-stats") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise InputError(f"'{path}' holds a single array (a .npy file?), not an .npz of 'mu' and 'sigma'")
    with f:
        if "mu" not in f or "sigma" not in f:
            raise InputError(f"'{path}' has no 'mu' and 'sigma' arrays")
        try:
            mu, sigma = f["mu"], f["sigma"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise InputError(f"'{path}': 'mu' or 'sigma' cannot be read ({err}); write the file again") from None
    mu, sigma = real_array(mu, f"'{path}' mu"), real_array(sigma, f"'{path}' sigma")
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise InputError(f"'{path}': mu {mu.shape} and sigma {sigma.shape} are not a (d,) mean and (d, d) covariance")
    return mu, sigma


def statistics_identity(path):
    """What produced a statistics file, as save_statistics recorded it ({} for files of other tools)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: str(f[k]) for k in IDENTITY_KEYS if k in f}


class FeatureSets:
    """What a calculator does with a feature extractor: features, statistics, saved statistics, distances.

    A subclass defines ``feature_batches(items, batch_size)`` (float64 (b, d) arrays, streamed),
    ``feature_dim`` and ``item`` (the word its messages use: "image", "video").
    """
    item = "item"
    metric = "a feature distance"
    small_set_advice = "compare sets of equal size"
    mu = sigma = n = None

    def identity(self):
        """What this calculator's statistics are: metric, feature dimension, model (recorded in saved
        statistics and checked when they are read back)."""
        return {"metric": self.metric, "feature_dim": self.feature_dim, "model": self.model_identity()}

    def model_identity(self):
        return "unknown"

    def check_statistics(self, identity, mu, where):
        """Statistics from a file must be of this metric, feature dimension and model."""
        mine = self.identity()
        if mu.size != self.feature_dim:
            raise InputError(f"{where} holds statistics of {mu.size}-dimensional features, but {self.metric} compares "
                             f"{self.feature_dim}-dimensional ones{_produced_by(identity)}; compute them with this "
                             f"metric's --save-stats")
        for key in ("metric", "model"):
            if key in identity and "unknown" not in (identity[key], mine[key]) and identity[key] != mine[key]:
                raise InputError(f"{where} holds statistics of {key} '{identity[key]}', not '{mine[key]}'; compare "
                                 f"statistics made with the same {key}")

    def feature_batches(self, items, batch_size=None):
        raise NotImplementedError

    def warn_if_small(self, n):
        if n <= self.feature_dim:  # rank n - 1 < d: the covariance is singular
            warnings.warn(f"a set has {n} {self.item}s, not more than the feature dimension {self.feature_dim}: the "
                          f"covariance is singular and the distance is strongly biased; {self.small_set_advice}",
                          stacklevel=3)

    def extract_features(self, items, batch_size=None):
        """(N, d) float64 numpy features (items: an array, a tensor, or an iterable of batches)."""
        out = list(self.feature_batches(items, batch_size))
        if not out:
            raise InputError(f"the {self.item} set is empty")
        return np.concatenate(out)

    def compute_statistics(self, items):
        """(mu, sigma, n) of the features, streamed in float64; also kept for save_statistics()."""
        stats = RunningStatistics(self.item)
        for features in self.feature_batches(items):
            stats.update(features)
        self.mu, self.sigma, self.n = stats.result()
        self.warn_if_small(self.n)
        return self.mu, self.sigma, self.n

    def save_statistics(self, path):
        """Write the statistics of the last compute_statistics() to an .npz (mu, sigma, n); returns the path."""
        if self.mu is None:
            raise RuntimeError(f"call compute_statistics({self.item}s) before save_statistics(path)")
        return save_statistics(path, self.mu, self.sigma, self.n, self.identity())

    def _features_of_two_sets(self, items1, items2, batch_size=None):
        """The features of two sets of at least 2 items each, with the small-set warning."""
        f1, f2 = self.extract_features(items1, batch_size), self.extract_features(items2, batch_size)
        for f in (f1, f2):
            if len(f) < 2:
                raise InputError(f"each set needs at least 2 {self.item}s, got {len(f)}")
            self.warn_if_small(len(f))
        return f1, f2

    def distance(self, items1, items2, batch_size=None):
        """The Fréchet distance between two sets of at least 2 items each (from features: exact for any N)."""
        return frechet_distance_from_features(*self._features_of_two_sets(items1, items2, batch_size))

    def kernel_distance(self, items1, items2, num_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0):
        """(mean, standard error) of the kernel distance between two sets, from the same features as the
        Fréchet distance: KID on the SVG encoder, KVD on the I3D (see kernel_distance_from_features)."""
        return kernel_distance_from_features(self.extract_features(items1), self.extract_features(items2),
                                             num_subsets, subset_size, seed)

    def both_distances(self, items1, items2, num_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0):
        """(Fréchet distance, (kernel distance, its standard error)) from one pass of the network over each set."""
        num_subsets, subset_size, seed = checked_kid_settings(num_subsets, subset_size, seed)  # before the network
        f1, f2 = self._features_of_two_sets(items1, items2)
        return (frechet_distance_from_features(f1, f2),
                kernel_distance_from_features(f1, f2, num_subsets, subset_size, seed))

    def compare(self, inputs):
        """The distance between two command-line inputs, each a set of items or ("stats", mu, sigma, ...): from
        the features when both are items (exact for any N), else from the statistics."""
        if not any(isinstance(d, tuple) for d in inputs):
            return self.distance(*inputs)
        for k, d in enumerate(inputs):
            if isinstance(d, tuple):
                self.check_statistics(d[3], d[1], f"input {k + 1}")
        stats = [d[1:3] if isinstance(d, tuple) else self.compute_statistics(d)[:2] for d in inputs]
        return frechet_distance_from_statistics(*stats[0], *stats[1])


def _produced_by(identity):
    known = [f"{k} {identity[k]}" for k in ("metric", "model") if k in identity]
    return f" (the file says: {', '.join(known)})" if known else ""


def check_save_stats_paths(source, target, readable):
    """The two paths of a command line's --save-stats: items in, an .npz of statistics out."""
    if not target.endswith(".npz"):
        raise InputError(f"--save-stats writes an .npz file; name the output '<name>.npz', not '{target}'")
    if source.endswith(".npz"):
        raise InputError(f"'{source}' already holds statistics; --save-stats needs {readable} as its first input")
    # the output is checked before any feature is computed (minutes for a large set)
    if os.path.isdir(target):
        raise InputError(f"--save-stats output '{target}' is a directory; name a file '<name>.npz'")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise InputError(f"--save-stats output folder '{folder}' does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise InputError(f"--save-stats output folder '{folder}' cannot be written; choose another")


def add_kernel_distance_arguments(parser, flag, name, item):
    """A command line's ``flag`` (--kid, --kvd), which also prints the kernel distance ``name``, and the
    settings of its subsets."""
    parser.add_argument(flag, dest="kernel", action="store_true",
                        help=f"also print {name} (the kernel distance on the same features) and its standard error; "
                             f"needs two {item} inputs")
    parser.add_argument("--num-subsets", "--num_subsets", dest="num_subsets", type=int, default=KID_SUBSETS,
                        help=f"with {flag}: random subsets the kernel distance is averaged over")
    parser.add_argument("--subset-size", "--subset_size", dest="subset_size", type=int, default=KID_SUBSET_SIZE,
                        help=f"with {flag}: {item}s per subset (sets of at most this size are used whole, which "
                             f"leaves no standard error: pass a smaller size for one)")


def check_kernel_distance_arguments(args, flag):
    """The subset settings of add_kernel_distance_arguments, checked before any feature is computed."""
    if not args.kernel and (args.num_subsets, args.subset_size) != (KID_SUBSETS, KID_SUBSET_SIZE):
        raise InputError(f"--num-subsets and --subset-size set up {flag}; pass {flag} with them")
    if args.kernel and (args.save_stats or len(args.inputs) != 2):
        raise InputError(f"{flag} compares two inputs; it does not go with --save-stats or without inputs")
    checked_kid_settings(args.num_subsets, args.subset_size)


def check_kernel_distance_inputs(args, inputs, flag, readable):
    """``flag`` needs two sets of items (``readable``: what they may be), not statistics files."""
    if args.kernel and any(isinstance(d, tuple) for d in inputs):
        raise InputError(f"{flag} needs two inputs of {readable}: a kernel distance is computed from the features, "
                         f"which statistics files do not hold")


def print_both_distances(calc, inputs, args, name):
    """What a command line prints with its kernel flag: the Fréchet distance, then the kernel distance ``name``."""
    fd, (mean, error) = calc.both_distances(*inputs, args.num_subsets, args.subset_size)
    print(f"{fd:.6f}")
    print(f"{name} {mean:.6f} ± {error:.6f} (standard error)" if error == error else f"{name} {mean:.6f}")
