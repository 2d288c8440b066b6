"""The run directory <log_dir>/<exp_name>: never clobbered, one training at a time.

The rules (README, "Train"):
- A new run refuses a directory that already holds a run (checkpoints, metrics, config or
  TensorBoard events). The choices: continue it with --resume, name another run with --exp_name,
  or replace it with --overwrite.
- The trainer writes nothing into the directory until every check of config, data and model has
  passed (it calls `claim` only then).
- One training per directory: a second one started while the first runs refuses. The lock is an
  OS file lock (flock) on <run>/.lock, released by the kernel when its process ends however it
  ends, so a crashed or killed run never leaves a stale lock behind.
- A run that never took a step is not a run. A start stopped before its first step removes what
  it created (`discard_unstarted`); what a SIGKILL leaves at that point (config.yaml, empty logs,
  no checkpoint, no metric) is taken over by the next new run without --overwrite.
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


def unstarted(run_dir: Path) -> bool:
    """run_dir holds what a start leaves before training (no checkpoint, no logged metric), so
    nothing in it is worth keeping; also true for a missing or empty directory."""
    if not run_dir.is_dir() or any((run_dir / "checkpoints").glob("*.pt")):
        return False
    metrics = run_dir / "metrics.jsonl"
    return not (metrics.is_file() and metrics.read_text().strip())


def check_new_run(run_dir: Path, overwrite: bool) -> None:
    """A new run may start in run_dir: it holds no run (or one that never took a step), or
    overwrite was asked for."""
    found = run_contents(run_dir)
    if found and not overwrite and not unstarted(run_dir):
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise RunDirError(
            f"{run_dir} already holds a run ({shown}). Continue it with --resume {run_dir}, start "
            f"another with --exp_name NEW_NAME, or replace it with --overwrite (deletes the old run)")


class RunLock:
    """An exclusive, non-blocking lock on <run_dir>/.lock, held until release() or process exit."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._file = None
        # The directories acquire() creates, deepest first: a discarded start removes them again.
        self.created_dirs = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]

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
    old run's files first, and a start that never took a step leaves nothing behind either."""
    lock = RunLock(run_dir)
    lock.acquire()
    try:
        if new_run:
            check_new_run(run_dir, overwrite)
            if overwrite:
                _clear(run_dir)
            else:
                _clear_unstarted(run_dir)
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


def _clear_unstarted(run_dir: Path) -> None:
    """Delete what a start writes before its first step (only that: other files stay)."""
    for name in ("config.yaml", "metrics.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    for events in run_dir.glob("events.out.tfevents.*"):
        events.unlink()
    if (run_dir / "checkpoints").is_dir():
        shutil.rmtree(run_dir / "checkpoints")


def discard_unstarted(run_dir: Path, lock: RunLock) -> Optional[str]:
    """Undo a start that was stopped before its first step, as if it had never begun: delete its
    files, release the lock, and remove the directories it created if nothing else is in them.
    -> "removed" (run_dir is gone), "cleared" (it was there before, or holds other files) or None
    (it holds a checkpoint or a logged metric after all: a run, kept)."""
    if not unstarted(run_dir):
        lock.release()
        return None
    _clear_unstarted(run_dir)
    lock.path.unlink(missing_ok=True)
    lock.release()
    for directory in lock.created_dirs:
        try:
            directory.rmdir()  # only when empty
        except OSError:
            break
    return "cleared" if run_dir.exists() else "removed"


def resumed_run_dir(checkpoint_path: str | Path) -> Optional[Path]:
    """<run>/checkpoints/NAME.pt -> <run>; None for a checkpoint kept elsewhere."""
    path = Path(checkpoint_path)
    return path.parent.parent if path.parent.name == "checkpoints" else None
