"""Train a small VGGT (models/geometry_model.py) on a dataset with recorded geometry, report its
held-out accuracy, and save it where model.geometry_alignment.checkpoint / model.vggt.checkpoint
load it.

    python scripts/train_geometry_model.py --dataset data/libero_spatial_geo/lerobot --out models/vggt_small

The held-out episodes are whole demonstration episodes (data.split_episodes), so the accuracy is
on scenes the model never saw; demonstrations come from sampled scenes, never from evaluation's
initial states. The output directory holds model.safetensors (`aggregator.*`, `heads.*`) and
config.json (the aggregator_kwargs a config needs to load it, the data and the accuracy).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import default_collate

from vggt_vla.data.geometry import GeometryFrames
from vggt_vla.data.lerobot import LeRobotSource
from vggt_vla.data.loader import make_loader, split_episodes
from vggt_vla.models.geometry_model import (CONFIG_FILE, WEIGHTS_FILE, GeometryModel, geometry_losses,
                                            geometry_metrics)
from vggt_vla.models.vggt import SMALL_KWARGS
from vggt_vla.training.optim import warmup_cosine
from vggt_vla.output_paths import check_output_dir


@dataclass
class GeometryTrainingConfig:
    dataset: str
    out: str
    aggregator_kwargs: dict = field(default_factory=lambda: dict(SMALL_KWARGS))
    steps: int = 2000
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    val_fraction: float = 0.1
    val_samples: int = 256     # held-out frames scored (spread evenly over the held-out episodes)
    log_every: int = 50
    seed: int = 0
    num_workers: int = 1

    def __post_init__(self):
        for name in ("steps", "batch_size", "warmup_steps", "val_samples", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction={self.val_fraction} must be in (0, 1): the accuracy is held-out")
        if self.aggregator_kwargs.get("img_size", 518) % self.aggregator_kwargs.get("patch_size", 14):
            raise ValueError("aggregator_kwargs img_size must be a multiple of its patch_size")


def claim_output(out: Path, overwrite: bool) -> None:
    """Refuse to replace a trained model unless asked, and an unwritable path; checked before any
    data is read (vggt_vla/output_paths.py)."""
    check_output_dir(out, "--out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace it, or another --out")


def train_geometry_model(cfg: GeometryTrainingConfig, overwrite: bool = False, log=print) -> dict:
    out = Path(cfg.out)
    claim_output(out, overwrite)
    torch.manual_seed(cfg.seed)
    source = LeRobotSource(cfg.dataset, camera_keys=None, geometry=True, progress=False)
    train_eps, val_eps = split_episodes(source.episode_indices, cfg.val_fraction, cfg.seed)
    rows = {name: np.concatenate([np.arange(source.ep_start[source.episode_position(e)],
                                            source.ep_end[source.episode_position(e)]) for e in eps])
            for name, eps in (("train", train_eps), ("val", val_eps))}
    size = cfg.aggregator_kwargs.get("img_size", 518)
    val_rows = rows["val"][np.linspace(0, len(rows["val"]) - 1, min(cfg.val_samples, len(rows["val"]))).astype(int)]
    train_set, val_set = GeometryFrames(source, rows["train"], size), GeometryFrames(source, val_rows, size)
    sampler = torch.utils.data.RandomSampler(train_set, replacement=True, num_samples=cfg.steps * cfg.batch_size,
                                             generator=torch.Generator().manual_seed(cfg.seed))
    loader = make_loader(train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                         drop_last=True, seed=cfg.seed, collate_fn=default_collate)
    # The floor a model must beat: the training frames' mean (the agent view never moves, so its
    # mean depth map alone is already close; the wrist camera's is not). The model's per-pixel
    # maps start there.
    train_subset = GeometryFrames(source, rows["train"][np.linspace(0, len(rows["train"]) - 1,
                                                                    min(cfg.val_samples, len(rows["train"])))
                                                        .astype(int)], size)
    mean_frame = MeanFrame(train_subset, cfg.batch_size)
    model = GeometryModel(cfg.aggregator_kwargs)
    model.init_pixel_prior(mean_frame.mean["depth"], mean_frame.mean["points"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = warmup_cosine(opt, cfg.warmup_steps, cfg.steps)
    log(f"geometry model: {sum(p.numel() for p in model.parameters()):,} parameters; {len(train_eps)} train / "
        f"{len(val_eps)} held-out episodes ({len(rows['train'])} / {len(rows['val'])} frames), {size} px")
    start = time.perf_counter()
    model.train()
    for step, batch in enumerate(loader, 1):
        losses = geometry_losses(model(batch["images"]), batch)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the geometry loss is {loss.item()} at step {step}; lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            parts = "  ".join(f"{k} {v.item():.4f}" for k, v in losses.items())
            log(f"step {step}/{cfg.steps}  loss {loss.item():.4f}  ({parts})  {time.perf_counter() - start:.0f} s")
    train_s = time.perf_counter() - start
    accuracy = evaluate_geometry_model(model, val_set, cfg.batch_size)
    log("held-out: " + "  ".join(f"{k} {v:.4g}" for k, v in accuracy.items()))
    floor = evaluate_geometry_model(mean_frame, val_set, cfg.batch_size)
    log("held-out, training frames' mean (the floor): " + "  ".join(f"{k} {v:.4g}" for k, v in floor.items()))
    save_geometry_model(model, out, {**asdict(cfg), "train_episodes": train_eps.tolist(),
                                     "val_episodes": val_eps.tolist(), "train_s": round(train_s, 1),
                                     "held_out": accuracy, "held_out_mean_frame": floor,
                                     "dataset_identity": source.identity()}, overwrite)
    return accuracy


class MeanFrame(torch.nn.Module):
    """A predictor that ignores its input: per camera, the mean depth map, point map and pose of
    some training frames (a quaternion mean is fine here: the poses are close to each other)."""

    def __init__(self, frames, batch_size: int):
        super().__init__()
        sums, count = {}, 0
        for batch in make_loader(frames, batch_size=batch_size, collate_fn=default_collate):
            for key in ("depth", "points", "pose"):
                sums[key] = sums.get(key, 0) + batch[key].sum(0)  # [S, ...]
            count += len(batch["depth"])
        self.mean = {key: value / count for key, value in sums.items()}
        q = self.mean["pose"][:, 3:]                                          # [S, 4]
        self.mean["pose"][:, 3:] = q / q.norm(dim=-1, keepdim=True).clamp(min=1e-8)

    def forward(self, images: torch.Tensor) -> dict:
        b = images.shape[0]                                                   # images [B, S, 3, R, R]
        return {key: value.expand(b, *value.shape) for key, value in self.mean.items()}


@torch.no_grad()
def evaluate_geometry_model(model: GeometryModel, dataset, batch_size: int) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    for batch in make_loader(dataset, batch_size=batch_size, collate_fn=default_collate):
        for k, v in geometry_metrics(model(batch["images"]), batch).items():
            sums[k] = sums.get(k, 0) + v
    pixels, poses = max(1, sums["pixels"]), max(1, sums["poses"])
    return {"depth_absrel": sums["absrel"] / pixels, "point_error_cm": sums["point_cm"] / pixels,
            "pose_translation_cm": sums["pose_t_cm"] / poses, "pose_rotation_deg": sums["pose_rot_deg"] / poses,
            "frames": len(dataset)}


def save_geometry_model(model: GeometryModel, out: Path, info: dict, overwrite: bool) -> None:
    """Written to a temporary sibling, then moved into place: a stopped save leaves no half model."""
    from safetensors.torch import save_file

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS_FILE))
    (tmp / CONFIG_FILE).write_text(json.dumps(info, indent=2))
    if out.exists() and overwrite:
        shutil.rmtree(out)
    elif out.exists():
        out.rmdir()  # empty (claim_output checked)
    tmp.replace(out)
