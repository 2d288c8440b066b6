"""Checkpoints: one file per checkpoint (`last.pt`, `best.pt`), written atomically.

A checkpoint holds everything needed to resume exactly or to run the policy:

    model               state_dict without the pretrained parts (they are reloaded from their
                        sources, listed under `pretrained_parts`, when the model is rebuilt)
    pretrained_parts    {module prefix: hub id / path}, e.g. {"language.model": "Qwen/Qwen2-0.5B"}
    optimizer, scheduler, scaler, step, epoch, batch_in_epoch, rng, metrics
    config              the full resolved config (a plain dict)
    normalization       the state/action statistics the model was trained with

Atomic write: the file is written to a temporary name in the same directory, flushed and
fsync'ed, then renamed over the old one (``os.replace`` is atomic on POSIX), and the directory
is fsync'ed. A crash at any point leaves either the old checkpoint or the new one, never half.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


class SaveError(RuntimeError):
    """A checkpoint could not be written (a full disk, a lost permission). The message is one line,
    `<cause>: <path>`; the file that was at the path before is left as it was."""


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """Write `obj` to `path` atomically; SaveError (one line) when the file system refuses."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        cause = _os_error(err)
        if cause is not None:
            raise SaveError(f"{cause.strerror or cause}: {path} (the previous {path.name}, if any, is "
                            f"kept)") from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _os_error(err: BaseException) -> OSError | None:
    """The OSError behind a failed write. torch.save reports a failed write to its zip writer as a
    RuntimeError ('enforce fail at inline_container.cc ... unexpected pos') raised while handling
    the OSError (e.g. ENOSPC), so the chain is searched."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno is not None:
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace a small text file in one step (a kill leaves the old or the new one)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_state(model: torch.nn.Module, pretrained_parts: dict[str, str]) -> dict[str, torch.Tensor]:
    """state_dict without the tensors of pretrained parts (frozen, reloaded from their source)."""
    prefixes = tuple(p + "." for p in pretrained_parts)
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith(prefixes)}


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: missing, unreadable, foreign, or at odds with its own config.
    The message is one line: which file, what is wrong, what to do."""


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], pretrained_parts: dict[str, str],
                     source: str | Path = "checkpoint") -> None:
    """Load a checkpoint's model tensors; only the pretrained parts may be absent from it.
    source names the file in the error when the tensors do not fit the model."""
    expected = model.state_dict()
    prefixes = tuple(p + "." for p in pretrained_parts)
    missing = [k for k in expected if k not in state and not k.startswith(prefixes)]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or reshaped:
        problems = []
        if reshaped:
            k = reshaped[0]
            problems.append(f"{len(reshaped)} tensor(s) differ in shape (e.g. {k}: checkpoint "
                            f"{list(state[k].shape)} vs model {list(expected[k].shape)})")
        if missing:
            problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(
            f"{source}: its weights do not fit the model its config builds: {'; '.join(problems)}. The "
            f"config or the weights were changed after training; use the checkpoint as train_vla.py wrote it")
    model.load_state_dict(state, strict=False)


def resolve_checkpoint(path: str | Path, name: str | tuple[str, ...] = "last") -> Path:
    """A checkpoint file, a run directory, or its checkpoints/ folder -> the checkpoint file.
    `name` may list names in order of preference, e.g. ("best", "last")."""
    path = Path(path)
    names = (name,) if isinstance(name, str) else name
    candidates = [path] if path.is_file() else [
        folder / f"{n}.pt" for n in names for folder in (path / "checkpoints", path)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CheckpointError(
        f"no checkpoint at '{path}' (looked for {', '.join(str(c) for c in candidates)}); pass a .pt "
        f"file or a run directory <log_dir>/<exp_name>")


REQUIRED_ENTRIES = ("model", "config", "normalization")


def load_checkpoint(path: str | Path, name: str | tuple[str, ...] = "last") -> dict:
    """Read a checkpoint written by the trainer; CheckpointError (one line) when it cannot be used."""
    file = resolve_checkpoint(path, name)
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: say which, in one line
        detail = (str(err).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"{file}: not a readable checkpoint ({type(err).__name__}: {detail}); it is truncated (an "
            f"interrupted copy or a full disk) or another kind of file. Use another checkpoint of the "
            f"run, e.g. checkpoints/best.pt or checkpoints/last.pt") from None
    missing = [k for k in REQUIRED_ENTRIES if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{file}: not a vggt-vla checkpoint (no {', '.join(repr(k) for k in missing)} "
            f"entr{'y' if len(missing) == 1 else 'ies'}); pass a file written by scripts/train_vla.py")
    ckpt["path"] = str(file)
    return ckpt


def checkpoint_config(ckpt: dict):
    """The Config a checkpoint was trained with; CheckpointError if it no longer parses."""
    from vggt_vla.config import ConfigError, config_from_dict

    try:
        return config_from_dict(ckpt["config"], saved=True)  # an older version's keys are moved
    except (ConfigError, TypeError, KeyError) as err:
        raise CheckpointError(f"{ckpt['path']}: its config does not parse with this version of vggt-vla "
                              f"({err}); use the code version the run was trained with") from None


def checkpoint_normalizer(ckpt: dict, cfg):
    """The state/action statistics a checkpoint was trained with, covering what the config `cfg`
    normalises: the action, and the state when the model takes one."""
    from vggt_vla.data.normalize import Normalizer

    keys = [cfg.data.action_key] + ([cfg.data.state_key] if cfg.model.state_dim > 0 else [])
    try:
        normalizer = Normalizer.from_dict(ckpt["normalization"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{ckpt['path']}: its normalisation statistics are damaged "
                              f"({type(err).__name__}: {err}); restore the checkpoint or retrain") from None
    lacking = [k for k in keys if k not in normalizer.keys]
    if lacking:
        raise CheckpointError(
            f"{ckpt['path']}: its normalisation statistics have no entry for {lacking} (they cover "
            f"{normalizer.keys}), so actions cannot be put back in the dataset's units; restore the "
            f"checkpoint or retrain")
    return normalizer
