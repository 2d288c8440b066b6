"""The batch: dataset items -> the dict VLAModel reads, and onto a device. Format-neutral: any
dataset whose items carry these keys (LeRobot, LIBERO HDF5, a new format) batches the same way.

    item  = {"images" [V,3,S,S], "instruction" str, "state" [S], "actions" [T,A],
             "action_pad_mask" [T] bool, "goal_state" [S] and "row" int (both optional),
             "geometry" [V,P,4] and "geometry_valid" [V,P] (optional, data/geometry.py)}
    batch = collate(items)          # images [B,V,3,S,S], instruction list[str], state [B,S], ...

Batch keys are the item keys (LeRobot's convention), so a key means one thing everywhere.
    batch = to_device(batch, "cuda")
"""

from __future__ import annotations

import numpy as np
import torch


def collate(items: list[dict]) -> dict:
    """Items -> the batch dict (images [B,V,3,H,W], instruction list[str], state [B,S],
    actions [B,T,A], action_pad_mask [B,T], and goal_state [B,S] / row [B] when every item carries them)."""
    batch = {
        "images": _stack([it["images"] for it in items]),
        "instruction": [it["instruction"] for it in items],
        "state": _stack([it["state"] for it in items]),
        "actions": _stack([it["actions"] for it in items]),
        "action_pad_mask": _stack([it["action_pad_mask"] for it in items]),
    }
    if all("goal_state" in it for it in items):
        batch["goal_state"] = _stack([it["goal_state"] for it in items])
    for key in ("geometry", "geometry_valid"):  # recorded geometry targets (data/geometry.py)
        if all(key in it for it in items):
            batch[key] = _stack([it[key] for it in items])
    if all("row" in it for it in items):
        batch["row"] = torch.tensor([it["row"] for it in items], dtype=torch.long)
    return batch


def to_device(batch: dict, device) -> dict:
    """A collated batch with its tensors on `device` (asynchronous copies from pinned memory)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    # numpy's single-threaded copy (torch.stack's threads contend with the training step). In a
    # DataLoader worker the result goes straight into shared memory, which the batch must reach
    # anyway to cross to the main process: one copy instead of two.
    first = tensors[0]
    shape = (len(tensors), *first.shape)
    if torch.utils.data.get_worker_info() is not None:
        out = torch.empty(0, dtype=first.dtype)
        out.set_(out.untyped_storage()._new_shared(int(np.prod(shape)) * first.element_size()))
        out = out.view(shape)
    else:
        out = torch.empty(shape, dtype=first.dtype)
    np.stack([t.numpy() for t in tensors], out=out.numpy())
    return out
