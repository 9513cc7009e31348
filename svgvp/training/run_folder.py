"""A training run's life: its folder and the rules that keep its work safe.

A run folder holds ``args.json``, ``metrics.jsonl``, ``train.log``, ``model.pth`` and ``gen/``.
Rules: a folder that already holds a run is never started over (``claim`` refuses it); one
process at a time writes to a folder (an exclusive ``flock`` held for the life of the run, which
the kernel drops when the process dies, so a dead process never leaves a stale lock); temporary
files of a write that was killed are removed when the next process takes the lock; a start that
fails before the run began leaves nothing behind (``close``); the logs of epochs that have no
checkpoint are trimmed when a run resumes (``start``); Ctrl-C and SIGTERM end a run with one line
naming the epoch its checkpoint holds (kept in memory: nothing is read again to say it).
"""
import errno
import glob
import json
import os
import re
import signal
import threading
from contextlib import contextmanager

from svgvp.utils import LOCK_NAME, FolderBusy, UsageError, lock_folder

RUN_FILES = ("model.pth", "args.json", "metrics.jsonl", "train.log")


class RunFolderBusy(Exception):
    """Another live process holds the run folder's lock."""


class TrainingInterrupted(Exception):
    """Ctrl-C, SIGINT or SIGTERM: the message says which epoch model.pth holds and how to continue.

    From its creation until ``restore_signals``, a second signal ends the process at once, quietly.
    """

    def __init__(self, message, exit_code=130):
        super().__init__(message)
        self.exit_code = exit_code  # the shell's code for a run ended by that signal: 130 SIGINT, 143 SIGTERM
        self._previous = exit_at_next_signal(exit_code)

    def restore_signals(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, a cluster's time limit), handled like Ctrl-C."""


@contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises Terminated, so a killed run ends as cleanly as Ctrl-C
    (a job started with `nohup ... &` ignores SIGINT, so SIGTERM is how such runs are stopped)."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread
        yield
        return

    def terminate(signum, frame):
        raise Terminated
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_at_next_signal(code):
    """Make the next Ctrl-C or SIGTERM end the process at once and quietly; returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, lambda signum, frame: os._exit(code)) for sig in (signal.SIGINT, signal.SIGTERM)}


def ignore_stop_signals(worker_id=None):
    """Data workers leave SIGTERM and SIGINT to the main process, which then shuts them down itself;
    otherwise `pkill`, a cluster scheduler or Ctrl-C, which signal every process of the job, would
    stop a worker first and the DataLoader (its pin-memory thread on a GPU) would print a traceback."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class RunWriteError(Exception):
    """The run folder could not be written during training (disk full, folder deleted); exit code 1."""


LOG_EPOCH = re.compile(r"\[(\d+)\]")  # train.log lines begin with the epoch, as the 2018 console line


class Run:
    """Where a run writes: args.json, metrics.jsonl, train.log, model.pth and gen/."""

    def __init__(self, directory, saved_epoch=None):
        self.dir = directory
        self.gen = os.path.join(directory, "gen")
        self.checkpoint = os.path.join(directory, "model.pth")
        self.metrics = os.path.join(directory, "metrics.jsonl")
        self.log = os.path.join(directory, "train.log")
        self.saved_epoch = saved_epoch  # the epoch model.pth holds, or None before the first save
        self.started = False
        self._created = []  # folders this process made, removed again if the run never starts
        self._made_lock_file = False
        self._lock_file = None

    def claim(self, resumed):
        """Lock the folder; a new or continued run never reuses a folder that holds a run."""
        def refuse_if_taken():
            if not resumed and self.holds_a_run():
                raise UsageError(f"'{self.dir}' already holds a run; continue it with --resume {self.dir}, start "
                                 f"a new one elsewhere (--name SUFFIX or --log_dir DIR), or delete the folder to "
                                 f"start over")
        refuse_if_taken()
        try:
            self.lock()
        except RunFolderBusy as err:
            raise UsageError(str(err)) from None
        except OSError as err:
            raise UsageError(f"cannot write the run folder '{self.dir}' ({err.strerror}); choose a writable "
                             f"--log_dir") from None
        try:
            refuse_if_taken()  # again under the lock: another process may have started there meanwhile
        except UsageError:
            self.close()
            raise

    def start(self, start_epoch):
        """The run has really started: gen/ exists and the logs hold no epoch after the checkpoint's."""
        self.make()
        self.drop_metrics_after(start_epoch - 1)
        self.started = True

    def save(self, state, epoch):
        """Write the checkpoint dict of a finished epoch atomically (see checkpoint.save_checkpoint); from now
        on an interruption or a write failure names this epoch as the one model.pth holds."""
        from svgvp.training.checkpoint import save_checkpoint
        save_checkpoint(self.checkpoint, state)
        self.saved_epoch = epoch

    def close(self):
        """Drop the lock; a run that never started leaves no folder or lock file behind."""
        self.unlock()
        if self.started:
            return
        lock = os.path.join(self.dir, LOCK_NAME)
        if self._made_lock_file and os.path.exists(lock):
            os.remove(lock)
            self._made_lock_file = False
        for d in reversed(self._created):
            try:
                os.rmdir(d)
            except OSError:  # not empty or gone: leave it
                pass
        self._created = []

    def write_failure(self, err):
        """The RunWriteError for an OSError met while writing the end-of-epoch files."""
        kept = (f"{self.checkpoint} still holds epoch {self.saved_epoch}" if self.saved_epoch is not None
                else "no checkpoint had been saved")
        if not os.path.isdir(self.dir):
            return RunWriteError(f"the run folder '{self.dir}' was deleted during training; nothing more can be "
                                 f"saved there")
        if err.errno == errno.ENOSPC:
            then = (f"continue with --resume {self.dir} --niter N" if self.saved_epoch is not None
                    else "delete the folder and start again")
            return RunWriteError(f"no space left on the device while writing to '{self.dir}'; {kept}. Free some "
                                 f"space, then {then}")
        what = f"'{err.filename}'" if err.filename else f"the run folder '{self.dir}'"
        return RunWriteError(f"could not write {what} ({err.strerror or err}); {kept}")

    def interrupted_message(self):
        """Where an interrupted run stands, from what this process knows (no file is read)."""
        if self.saved_epoch is None:
            return (f"interrupted before the first epoch ended; no checkpoint was saved in {self.dir}. "
                    f"Delete that folder to start the same run again")
        return (f"interrupted; {self.checkpoint} holds epoch {self.saved_epoch} (the last finished one). "
                f"Continue with: --resume {self.dir} --niter N")

    def interrupted(self, stop):
        """The TrainingInterrupted for a KeyboardInterrupt (Ctrl-C) or Terminated (SIGTERM)."""
        code = 143 if isinstance(stop, Terminated) else 130
        return TrainingInterrupted(self.interrupted_message() if self.started or self.saved_epoch is not None
                                   else "interrupted while starting; nothing was written", code)

    def holds_a_run(self):
        """True when the folder already has any file a run writes."""
        return any(os.path.exists(os.path.join(self.dir, name)) for name in RUN_FILES)

    def lock(self):
        """Take the folder's exclusive lock (creating the folder); raises RunFolderBusy if it is held."""
        missing, d = [], os.path.abspath(self.dir)
        while not os.path.isdir(d):
            missing.append(d)
            d = os.path.dirname(d)
        os.makedirs(self.dir, exist_ok=True)
        self._created = list(reversed(missing))
        self._made_lock_file = not os.path.exists(os.path.join(self.dir, LOCK_NAME))
        try:
            self._lock_file = lock_folder(self.dir)
        except FolderBusy as busy:
            raise RunFolderBusy(f"another process (pid {busy.owner}) is training in '{self.dir}'; wait for it "
                                f"to finish or stop it") from None
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
        """Forget the metrics and train.log lines of epochs that have no checkpoint (a run killed after
        logging, before saving). Lines that do not parse (a write cut by a kill) are dropped too."""
        if os.path.exists(self.log):
            with open(self.log) as f:
                kept = [line for line in f if (m := LOG_EPOCH.match(line)) and int(m.group(1)) <= epoch
                        and line.endswith("\n")]
            with open(self.log, "w") as f:
                f.writelines(kept)
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


def open_run(config, ckpt, new_folder):
    """(Run, first epoch) of a new run (into ``new_folder``), a resumed one (``--resume``: in place) or a
    continued one (``--model_dir``: ``<run>/continued``, or ``<new_folder>/continued`` from a .pth file);
    a continued run's epochs go on counting from the checkpoint's (a 2018 file has none and starts at 0)."""
    if ckpt is None:
        return Run(new_folder), 0
    if config.niter <= ckpt["epoch"] + 1:
        raise UsageError(f"the run already has {ckpt['epoch'] + 1} epochs; pass --niter larger than that")
    if config.resume:
        return Run(config.resume, saved_epoch=ckpt["epoch"]), ckpt["epoch"] + 1
    if os.path.isfile(config.model_dir):  # e.g. a shipped model or a 2018 file: continue under --log_dir
        return Run(os.path.join(new_folder, "continued")), ckpt["epoch"] + 1
    return Run(os.path.join(config.model_dir, "continued")), ckpt["epoch"] + 1
