"""A training run's folder and the rules that keep its work safe.

A run folder holds ``args.json``, ``metrics.jsonl``, ``train.log``, ``model.pth`` and ``gen/``.
Rules: a folder that already holds a run is never started over (the caller refuses it); one
process at a time writes to a folder (an exclusive ``flock`` held for the life of the run, which
the kernel drops when the process dies, so a dead process never leaves a stale lock); temporary
files of a write that was killed are removed when the next process takes the lock.
"""
import glob
import json
import os

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the other rules still hold
    fcntl = None

RUN_FILES = ("model.pth", "args.json", "metrics.jsonl", "train.log")
LOCK_NAME = ".lock"


class RunFolderBusy(Exception):
    """Another live process holds the run folder's lock."""


class Run:
    """Where a run writes: args.json, metrics.jsonl, train.log, model.pth and gen/."""

    def __init__(self, directory):
        self.dir = directory
        self.gen = os.path.join(directory, "gen")
        self.checkpoint = os.path.join(directory, "model.pth")
        self.metrics = os.path.join(directory, "metrics.jsonl")
        self.log = os.path.join(directory, "train.log")
        self._lock_file = None

    def holds_a_run(self):
        """True when the folder already has any file a run writes."""
        return any(os.path.exists(os.path.join(self.dir, name)) for name in RUN_FILES)

    def lock(self):
        """Take the folder's exclusive lock (creating the folder); raises RunFolderBusy if it is held."""
        os.makedirs(self.dir, exist_ok=True)
        f = open(os.path.join(self.dir, LOCK_NAME), "a+")
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                owner = f.read().strip() or "unknown"
                f.close()
                raise RunFolderBusy(f"another process (pid {owner}) is training in '{self.dir}'; wait for it "
                                    f"to finish or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock_file = f
        self.remove_stale_temporaries()

    def unlock(self):
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the flock
            self._lock_file = None

    def remove_stale_temporaries(self):
        """Delete ``.tmp-*`` files left by a process killed while writing (only the lock holder writes)."""
        for path in glob.glob(os.path.join(glob.escape(self.dir), ".tmp-*")):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def make(self):
        os.makedirs(self.gen, exist_ok=True)

    def drop_metrics_after(self, epoch):
        """Forget metrics of epochs that have no checkpoint (a run killed after logging, before saving).

        Lines that do not parse (a write cut by a kill) are dropped too.
        """
        if not os.path.exists(self.metrics):
            return
        rows = []
        with open(self.metrics) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("epoch"), int) and row["epoch"] <= epoch:
                    rows.append(json.dumps(row) + "\n")
        with open(self.metrics, "w") as f:
            f.writelines(rows)
