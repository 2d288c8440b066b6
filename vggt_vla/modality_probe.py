"""Which inputs does a policy use? Shuffle one input across a batch and see how far the actions move.

    python scripts/eval.py --checkpoint logs/demo --probe_modalities

For each input (every camera, the instruction, the state), the probe takes validation batches,
replaces that input alone with another sample's (a random cyclic shift of the batch, so no
sample keeps its own), and measures the mean absolute change of the predicted chunk, per action
dimension, divided by the standard deviation of the target actions over the same frames. A value
near 0 means the policy ignores the input; about 1 means swapping it moves the prediction by a
whole spread of the targets. The mean is taken over the dimensions whose targets vary (constant
dimensions, such as the demo's z and rotations, have no spread to compare with).

Flow-matching heads sample noise: both predictions of a pair use the same seed, so only the
shuffled input differs.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from vggt_vla.policy import Policy


def _shuffled(batch: dict, key: str, camera: Optional[int], order: torch.Tensor) -> dict:
    """A copy of `batch` with one input replaced by the samples in `order`."""
    out = dict(batch)
    if key == "images":
        images = batch["images"].clone()  # [B, V, 3, H, W]
        images[:, camera] = batch["images"][order, camera]
        out["images"] = images
    elif key == "instruction":
        out["instruction"] = [batch["instruction"][int(i)] for i in order]
    else:
        out[key] = batch[key][order]
    return out


def _predict(policy: Policy, batch: dict, seed: int) -> torch.Tensor:
    generator = torch.Generator(device=policy.device).manual_seed(seed)
    return policy.model.predict_action_chunk(batch, generator).float()  # [B, T, A]


def probe_modalities(policy: Policy, dataset: Optional[str] = None, *, batch_size: int = 64,
                     batches: int = 4, seed: int = 0) -> dict:
    """{"inputs": {name: {"per_dim": [A], "mean": float}}, "frames": n, "action_names": [...]}.

    Runs `batches` batches of `batch_size` frames spread evenly over the held-out episodes."""
    from vggt_vla.data.batch import collate, to_device
    from vggt_vla.offline_eval import held_out_frames

    if batch_size < 2:
        raise ValueError("probe_modalities needs batch_size >= 2 (it shuffles across the batch)")
    frames, split = held_out_frames(policy, dataset)
    n = min(len(frames), batch_size * batches)
    picks = np.linspace(0, len(frames) - 1, n).round().astype(int)
    rng = torch.Generator().manual_seed(seed)
    cfg = policy.cfg
    inputs = {f"camera {k}": ("images", v) for v, k in enumerate(cfg.data.camera_keys)}
    inputs["instruction"] = ("instruction", None)
    if cfg.model.state_dim > 0:
        inputs["state"] = ("state", None)
    change = {name: [] for name in inputs}
    targets = []
    policy.model.eval()
    for start in range(0, n, batch_size):
        items = [frames[int(i)] for i in picks[start:start + batch_size]]
        if len(items) < 2:
            break
        batch = to_device(collate(items), policy.device)
        B = len(items)
        base = _predict(policy, batch, seed + start)  # [B, T, A]
        keep = (~batch["action_pad_mask"].bool()).unsqueeze(-1).float()  # [B, T, 1]
        targets.append(batch["actions"].float()[keep[..., 0].bool()].cpu())  # [k, A]
        for name, (key, camera) in inputs.items():
            perm = torch.randperm(B, generator=rng)
            order = torch.empty_like(perm)
            order[perm] = perm.roll(1)  # a cyclic shift of a random order: no sample keeps its own
            moved = _predict(policy, _shuffled(batch, key, camera, order.to(policy.device)), seed + start)
            diff = ((moved - base).abs() * keep).sum((0, 1)) / keep.sum().clamp_min(1.0)  # [A]
            change[name].append((diff.cpu(), B))
    spread = torch.cat(targets).std(0)  # [A], normalised units
    varies = spread > 1e-6
    result = {}
    for name, parts in change.items():
        total = sum(w for _, w in parts)
        mean_abs = sum(d * w for d, w in parts) / total  # [A]
        rel = torch.where(varies, mean_abs / spread.clamp_min(1e-6), torch.zeros_like(mean_abs))
        result[name] = {"per_dim": rel.tolist(), "mean": float(rel[varies].mean()) if varies.any() else 0.0}
    names = _action_names(frames.source, cfg.data.action_key, len(spread))
    return {"split": split, "frames": n, "inputs": result, "target_std": spread.tolist(),
            "varying_dims": varies.nonzero().flatten().tolist(), "action_names": names}


def _action_names(source, key: str, dims: int) -> list[str]:
    """The dataset's names for the action dimensions (info.json features), else a0, a1, ..."""
    feature = getattr(getattr(source, "meta", None), "features", {}).get(key, {})
    names = feature.get("names") if isinstance(feature, dict) else None
    if isinstance(names, dict):  # some LeRobot datasets nest them: {"motors": [...]}
        names = next(iter(names.values()), None)
    if isinstance(names, list) and len(names) == dims and all(isinstance(n, str) for n in names):
        return names
    return [f"a{i}" for i in range(dims)]


def format_probe(result: dict) -> str:
    """The probe as a table: one row per input, the varying dimensions and their mean."""
    dims = result["varying_dims"]
    names = result["action_names"]
    head = f"{'input shuffled':<40}" + "".join(f"{names[d]:>9}" for d in dims) + f"{'mean':>9}"
    lines = [f"modality probe on {result['frames']} {result['split']} frames: mean |change of the predicted "
             f"chunk| / std of the targets", head]
    for name, row in result["inputs"].items():
        lines.append(f"{name:<40}" + "".join(f"{row['per_dim'][d]:>9.3f}" for d in dims) + f"{row['mean']:>9.3f}")
    return "\n".join(lines)
