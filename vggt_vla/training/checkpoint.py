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

def atomic_torch_save(obj: Any, path: str | Path) -> None:
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
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], pretrained_parts: dict[str, str]) -> None:
    """Load a checkpoint's model tensors; only the pretrained parts may be absent from it."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    prefixes = tuple(p + "." for p in pretrained_parts)
    missing = [k for k in missing if not k.startswith(prefixes)]
    if missing or unexpected:
        raise RuntimeError(
            "checkpoint does not match the model built from its config:\n"
            f"  missing: {missing[:10]}{' ...' if len(missing) > 10 else ''}\n"
            f"  unexpected: {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")


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
    raise FileNotFoundError(
        f"no checkpoint at '{path}' (looked for {', '.join(str(c) for c in candidates)}); pass a .pt "
        f"file or a run directory <log_dir>/<exp_name>")


def load_checkpoint(path: str | Path, name: str | tuple[str, ...] = "last") -> dict:
    file = resolve_checkpoint(path, name)
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: say which
        raise RuntimeError(f"could not read checkpoint {file}: {type(err).__name__}: {err}") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise RuntimeError(f"{file} is not a vggt-vla checkpoint (no 'model'/'config' entries)")
    ckpt["path"] = str(file)
    return ckpt
