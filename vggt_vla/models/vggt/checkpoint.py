"""Load the aggregator part of a VGGT checkpoint (hub id, file or directory).

A full VGGT checkpoint holds `aggregator.*` plus the heads (`camera_head.*`, `depth_head.*`,
`point_head.*`, `track_head.*`). Only the aggregator keys are loaded, strictly; the rest is reported as
ignored, so a policy that uses the trunk alone still notices if the file is not what it expects.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

AGGREGATOR_PREFIX = "aggregator."
HUB_FILENAMES = ("model.safetensors", "model.pt")  # tried in this order
# Names looked for inside a local directory, best first; otherwise a lone file with these suffixes.
LOCAL_FILENAMES = ("model.safetensors", "model.pt", "pytorch_model.bin", "model.bin")
SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class CheckpointError(RuntimeError):
    """A checkpoint could not be found, read, or matched to the aggregator."""


@dataclass
class LoadReport:
    """What `load_aggregator_weights` did."""

    source: str  # what the caller passed (hub id or path)
    path: Path  # the file actually read
    num_loaded: int  # aggregator tensors loaded
    ignored_keys: list[str] = field(default_factory=list)  # non-aggregator keys (heads), not loaded

    def summary(self) -> str:
        groups = Counter(k.split(".", 1)[0] for k in self.ignored_keys)
        ignored = ", ".join(f"{g} ({n})" for g, n in sorted(groups.items())) or "none"
        return f"loaded {self.num_loaded} aggregator tensors from {self.path}; ignored: {ignored}"


def resolve_vggt_weights(
    source: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> Path:
    """Turn a local file, a local directory or a Hugging Face repo id into a local weights file."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        return _find_in_directory(path)
    if isinstance(source, str) and _REPO_ID.match(source) and not source.endswith(SUFFIXES):
        return _download(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    raise CheckpointError(
        f"checkpoint {str(source)!r} is neither an existing file/directory nor a Hugging Face repo id "
        f"like 'facebook/VGGT-1B'; pass a path to a {'/'.join(SUFFIXES)} file or a directory holding one"
    )


def _find_in_directory(directory: Path) -> Path:
    for name in LOCAL_FILENAMES:
        if (directory / name).is_file():
            return directory / name
    candidates = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(p.name for p in candidates) or "no weight files"
    raise CheckpointError(
        f"directory {directory} has no {' / '.join(LOCAL_FILENAMES)} and not exactly one "
        f"{'/'.join(SUFFIXES)} file (found: {found}); pass the weights file itself"
    )


def _download(repo_id: str, *, revision, cache_dir, local_files_only) -> Path:
    from huggingface_hub import hf_hub_download  # imported lazily: only hub loads need it

    errors = []
    for filename in HUB_FILENAMES:
        try:
            return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                                        local_files_only=local_files_only))
        except Exception as exc:  # missing file, offline, gated, ...: try the next name, report all
            errors.append(f"  {filename}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise CheckpointError(
        f"could not get weights for Hugging Face repo {repo_id!r} (tried {', '.join(HUB_FILENAMES)}):\n"
        + "\n".join(errors)
        + "\nIf this machine is offline, download the file elsewhere (e.g. `hf download "
        f"{repo_id} model.safetensors`) and pass its local path or directory instead, or point "
        "HF_HOME / cache_dir at a cache that already holds it."
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a .safetensors / .pt / .pth / .bin file into a flat {key: tensor} dict on the CPU."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"could not read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    # Training checkpoints often wrap the weights; unwrap the usual containers.
    for wrapper in ("model", "state_dict", "module"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a state_dict (got {type(state).__name__})")
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def split_state_dict(
    state: dict[str, torch.Tensor], prefix: str = AGGREGATOR_PREFIX
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Keys under `prefix` (prefix stripped) and the list of all other keys."""
    if not prefix:
        return dict(state), []
    ours = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    ignored = [k for k in state if not k.startswith(prefix)]
    return ours, ignored


def _check_keys(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if not (missing or unexpected or mismatched):
        return

    def listing(title: str, items: list[str]) -> str:
        if not items:
            return ""
        shown = "\n    ".join(items[:20]) + (f"\n    ... and {len(items) - 20} more" if len(items) > 20 else "")
        return f"\n  {title} ({len(items)}):\n    {shown}"

    raise CheckpointError(
        f"checkpoint {where} does not match the aggregator:"
        + listing("missing keys", missing)
        + listing("unexpected keys", unexpected)
        + listing("shape mismatches", mismatched)
        + "\nBuild the aggregator with the checkpoint's configuration (vggt_1b() for facebook/VGGT-1B); "
        "keys are compared after stripping the 'aggregator.' prefix."
    )


def load_aggregator_weights(
    aggregator: nn.Module,
    source: str | Path = "facebook/VGGT-1B",
    *,
    prefix: str = AGGREGATOR_PREFIX,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> LoadReport:
    """Load the `aggregator.*` tensors of a VGGT checkpoint into `aggregator`, strictly.

    `source`: hub repo id (tries model.safetensors, then model.pt), a weights file, or a directory
    holding one. `prefix=""` loads a bare aggregator state_dict. If the aggregator was built on the
    meta device, the loaded tensors are assigned instead of copied (no double allocation). Tensors
    keep the module's dtype when copied and the checkpoint's dtype (float32) when assigned.
    Raises `CheckpointError` with the missing/unexpected keys on any mismatch.
    """
    path = resolve_vggt_weights(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    state, ignored = split_state_dict(read_state_dict(path), prefix)
    where = f"{path}" + (f" (from {source})" if str(source) != str(path) else "")
    if not state:
        raise CheckpointError(
            f"checkpoint {where} has no keys starting with {prefix!r}; it is not a VGGT checkpoint "
            "(for a bare aggregator state_dict pass prefix='')"
        )
    _check_keys(aggregator, state, where)
    on_meta = any(t.is_meta for t in aggregator.state_dict().values())
    aggregator.load_state_dict(state, strict=True, assign=on_meta)
    report = LoadReport(source=str(source), path=path, num_loaded=len(state), ignored_keys=ignored)
    logger.info("VGGT aggregator: %s", report.summary())
    return report
