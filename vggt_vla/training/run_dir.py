"""The run directory <log_dir>/<exp_name>: never clobbered, one training at a time.

The rules (README, "Training"):
- A new run refuses a directory that already holds a run (checkpoints, metrics, config or
  TensorBoard events). The choices: continue it with --resume, name another run with --exp_name,
  or replace it with --overwrite.
- The trainer writes nothing into the directory until every check of config, data and model has
  passed (it calls `claim` only then).
- One training per directory: a second one started while the first runs refuses. The lock is an
  OS file lock (flock) on <run>/.lock, released by the kernel when its process ends however it
  ends, so a crashed or killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Optional

LOCK_NAME = ".lock"


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (it holds another run, or another training
    is writing to it)."""


def run_contents(run_dir: Path) -> list[str]:
    """What in run_dir marks an existing run; [] for a missing or fresh directory."""
    if not run_dir.is_dir():
        return []
    found = sorted(str(p.relative_to(run_dir)) for p in (run_dir / "checkpoints").glob("*.pt"))
    found += [name for name in ("metrics.jsonl", "config.yaml") if (run_dir / name).exists()]
    found += sorted(p.name for p in run_dir.glob("events.out.tfevents.*"))
    return found


def check_new_run(run_dir: Path, overwrite: bool) -> None:
    """A new run may start in run_dir: it holds no run, or overwrite was asked for."""
    found = run_contents(run_dir)
    if found and not overwrite:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise RunDirError(
            f"{run_dir} already holds a run ({shown}). Continue it with --resume {run_dir}, start "
            f"another with --exp_name NEW_NAME, or replace it with --overwrite (deletes the old run)")


class RunLock:
    """An exclusive, non-blocking lock on <run_dir>/.lock, held until release() or process exit."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._file = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "an unknown process"
            f.close()
            raise RunDirError(
                f"another training ({holder}) is writing to {self.path.parent}; wait for it to finish, "
                f"or start this one with another --exp_name") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file drops the flock
            self._file = None

    def __del__(self):
        self.release()


def claim(run_dir: Path, new_run: bool, overwrite: bool) -> RunLock:
    """Lock run_dir (creating it) and make it ready for writing; call once all checks passed.

    new_run: re-check under the lock that no run appeared meanwhile; with overwrite, delete the
    old run's files first."""
    lock = RunLock(run_dir)
    lock.acquire()
    try:
        if new_run:
            check_new_run(run_dir, overwrite)
            if overwrite:
                _clear(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock


def _clear(run_dir: Path) -> None:
    """Delete everything in run_dir except the lock we hold."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def resumed_run_dir(checkpoint_path: str | Path) -> Optional[Path]:
    """<run>/checkpoints/NAME.pt -> <run>; None for a checkpoint kept elsewhere."""
    path = Path(checkpoint_path)
    return path.parent.parent if path.parent.name == "checkpoints" else None
