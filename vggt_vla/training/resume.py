"""The rule for --resume: what changed is refused or recorded.

A resumed run continues the steps its checkpoint took, so every config field of the resumed
command is compared with the checkpoint's config. A field that differs is refused, naming each
one (old -> new), unless it is in RESUME_SAFE: fields that say how long the run lasts and how it
reports, never what a step computes. Accepted changes are appended to <run>/resumes.jsonl (step,
checkpoint, old and new values) and config.yaml then holds the new values, so the run directory
still says which settings took which steps.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from vggt_vla.checkpoint import CheckpointError
from vggt_vla.config import Config

# Safe to change on resume, and why. Anything else (model, data, batch size, lr, seed, precision,
# device, ...) changes what the remaining steps compute, or what validation measures (and so which
# checkpoint is best), and is refused: that is a new run.
RESUME_SAFE = {
    # The run's length: extend a finished run or end it early. The cosine schedule is stretched to
    # the new length from the resumed step on (the learning rate changes from there; recorded).
    "train.max_steps": "run length",
    "train.num_epochs": "run length (when max_steps is null)",
    # When the run logs, validates, saves and draws panels: these never touch the weights, the data
    # order or the RNG streams (validation and panels restore them).
    "train.log_every": "reporting",
    "train.eval_every": "reporting",
    "train.save_every": "reporting",
    "train.image_every": "reporting",
    # How many processes load the data: a machine's resources. With data.augment the augmentation
    # draws come from other random streams (the same distribution), so that resume is not bit-exact.
    "data.num_workers": "machine resources",
    # A whole section: how the trained policy is run (Policy, eval.py); no training step reads it.
    "inference": "inference only",
    # Closed-loop scoring after training (quick_start.sh): no training step reads these.
    "sim.eval_episodes_per_task": "evaluation only",
    "sim.workers": "evaluation only",
    "sim.eval_max_steps": "evaluation only",
    "sim.robustness_suites": "evaluation only",
    "sim.robustness_episodes_per_task": "evaluation only",
    "sim.eval_camera_shift": "evaluation only",
}

RESUMES_LOG = "resumes.jsonl"


class ResumeConfigError(CheckpointError):
    """The resumed command changes settings the run's steps were taken with."""


def config_changes(old: Config, new: Config) -> dict[str, tuple]:
    """{dotted field: (old value, new value)} for every field that differs."""
    a, b = _flatten(old), _flatten(new)
    return {key: (a.get(key), b.get(key)) for key in sorted(a.keys() | b.keys()) if a.get(key) != b.get(key)}


def check_resume_config(saved: Config, cfg: Config, checkpoint: str, run: str) -> dict[str, tuple]:
    """The accepted changes of `cfg` against the checkpoint's `saved` config; ResumeConfigError
    (one line: each refused field, old -> new, and the fixes) when any other field differs."""
    changes = config_changes(saved, cfg)
    refused = {k: v for k, v in changes.items() if not resume_safe(k)}
    if refused:
        shown = "; ".join(f"{k}: {_short(old)} -> {_short(new)}" for k, (old, new) in list(refused.items())[:6])
        more = f"; and {len(refused) - 6} more" if len(refused) > 6 else ""
        raise ResumeConfigError(
            f"--resume {run}: the command changes settings the run's checkpoint ({checkpoint}) was "
            f"trained with: {shown}{more}. Undo the change (a flag or --set of this command, or an edit "
            f"of {Path(run) / 'config.yaml'}), or train it as a new run with another --exp_name. Only "
            f"{', '.join(k if '.' in k else k + '.*' for k in RESUME_SAFE)} may change on resume")
    return changes


def resume_safe(field: str) -> bool:
    """`field` (dotted) may change on resume: it, or its section, is in RESUME_SAFE."""
    return field in RESUME_SAFE or field.split(".")[0] in RESUME_SAFE


def record_resume(run_dir: Path, step: int, checkpoint: str, changes: dict[str, tuple]) -> None:
    """Append the accepted changes to <run>/resumes.jsonl (nothing when none changed)."""
    if not changes:
        return
    row = {"time": time.time(), "step": step, "checkpoint": checkpoint,
           "changed": {k: {"old": old, "new": new} for k, (old, new) in changes.items()}}
    with open(Path(run_dir) / RESUMES_LOG, "a") as f:
        f.write(json.dumps(row) + "\n")


def _flatten(obj, prefix: str = "") -> dict:
    """A config dataclass -> {dotted field: value}, one entry per leaf field."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.update(_flatten(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def _short(value) -> str:
    """repr, with long lists and mappings cut (strings, paths mostly, are shown whole)."""
    text = repr(value)
    return text if isinstance(value, str) or len(text) <= 80 else text[:77] + "..."
