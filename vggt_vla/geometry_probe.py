"""What do a policy's vision tokens know about the scene's geometry? A linear read-out, measured.

    python scripts/geometry_probe.py --checkpoint logs/libero_cpu --dataset data/libero_spatial_geo/lerobot

For frames of a dataset with recorded geometry (data/geometry.py), the probe takes the vision tokens
after the vision encoder and after every backbone layer, fits a ridge regression from each patch's
token and position to its recorded base-frame point and depth on the frames of some episodes, and
scores it on frames of other episodes: R^2 per channel and the mean error in centimetres, next to
the floor of the position alone (score_readouts). Run on a policy trained with
model.geometry_target and on one trained without, it says whether the loss put geometry into the
tokens, and at which layer; a policy that fails while its tokens encode geometry is not short of
geometry.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from vggt_vla.policy import Policy

CHANNELS = ("x", "y", "z", "depth")


@torch.no_grad()
def collect_tokens(policy: Policy, source, rows: np.ndarray, batch_size: int = 32) -> tuple[dict, np.ndarray, np.ndarray]:
    """({layer name: tokens [n*V*P, D]}, targets [n*V*P, 4], valid [n*V*P]) for the given rows."""
    from vggt_vla.data.batch import collate, to_device
    from vggt_vla.data.dataset import FrameDataset
    from vggt_vla.data.transforms import ImageTransform

    cfg = policy.cfg
    size = cfg.model.vision.image_size
    grid = (size // cfg.model.vision.patch_size,) * 2
    ds = FrameDataset(source, chunk_size=cfg.model.action_head.chunk_size, normalizer=policy.normalizer,
                      transform=ImageTransform(size, flip=cfg.data.flip_images), geometry_grid=grid)
    position = {int(r): i for i, r in enumerate(ds.rows)}
    model = policy.model.eval()
    layers: dict[str, list] = {}
    targets, valid = [], []
    for start in range(0, len(rows), batch_size):
        items = [ds[position[int(r)]] for r in rows[start:start + batch_size]]
        batch = to_device(collate(items), policy.device)
        inputs = model.fusion_inputs(batch)
        if inputs.vision is None:
            raise ValueError("the policy has no vision-encoder tokens to probe (vggt.fusion: inject)")
        found = {"encoder": inputs.vision}
        for layer in range(cfg.model.fusion_layers):
            found[f"layer {layer}"] = model.backbone.run(inputs, layer)[1]
        for name, tokens in found.items():
            layers.setdefault(name, []).append(tokens.float().flatten(0, 1).cpu().numpy())  # [B*V*P, D]
        targets.append(batch["geometry"].flatten(0, 2).cpu().numpy())  # [B*V*P, 4]
        valid.append(batch["geometry_valid"].flatten().cpu().numpy())
    return ({k: np.concatenate(v) for k, v in layers.items()}, np.concatenate(targets), np.concatenate(valid))


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardised inputs, closed-form ridge: (weights [D, C], input mean, input std)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    z1 = np.concatenate([z, np.ones((len(z), 1))], axis=1)
    reg = alpha * np.eye(z1.shape[1])
    reg[-1, -1] = 0  # no penalty on the intercept
    w = np.linalg.solve(z1.T @ z1 + reg, z1.T @ y)
    return w, mean, std


def ridge_predict(x: np.ndarray, fit) -> np.ndarray:
    w, mean, std = fit
    z = (x - mean) / std
    return np.concatenate([z, np.ones((len(z), 1))], axis=1) @ w


def probe_geometry(policy: Policy, dataset: str, *, frames: int = 512, alpha: float = 10.0,
                   seed: int = 0, cache_dir: Optional[str] = None) -> dict:
    """{"layers": {name: {"r2": {channel: R^2}, "point_error_cm", "depth_error_cm"}}, "fit_frames",
    "test_frames"}: fitted on frames of the policy's training episodes, scored on its held-out ones
    (data.val_fraction, split_seed), `frames` of each, spread evenly."""
    from vggt_vla.data.lerobot import LeRobotSource
    from vggt_vla.data.loader import split_episodes

    cfg = policy.cfg
    source = LeRobotSource(dataset, camera_keys=cfg.data.camera_keys, geometry=True, progress=False,
                           cache_dir=cache_dir)
    train_eps, test_eps = split_episodes(source.episode_indices, cfg.data.val_fraction or 0.1, cfg.data.split_seed)

    def spread(eps):
        rows = np.concatenate([np.arange(source.ep_start[source.episode_position(e)],
                                         source.ep_end[source.episode_position(e)]) for e in eps])
        return rows[np.linspace(0, len(rows) - 1, min(frames, len(rows))).round().astype(int)]

    fit_rows, test_rows = spread(train_eps), spread(test_eps)
    fit_x, fit_y, fit_ok = collect_tokens(policy, source, fit_rows)
    test_x, test_y, test_ok = collect_tokens(policy, source, test_rows)
    slots = len(cfg.data.camera_keys) * (cfg.model.vision.image_size // cfg.model.vision.patch_size) ** 2
    out = score_readouts((fit_x, fit_y, fit_ok), (test_x, test_y, test_ok), slots, alpha)
    return {"layers": out, "fit_frames": len(fit_rows), "test_frames": len(test_rows), "alpha": alpha}


def score_readouts(fit, test, slots: int, alpha: float) -> dict:
    """{"position": scores, name: scores, ...} for `fit` and `test` = ({name: tokens [n*slots, D]},
    targets [n*slots, 4], valid [n*slots]), rows ordered frame by frame, `slots` patches a frame.

    The floor is where a patch sits (camera and grid cell) alone: for a fixed camera it predicts much
    of the geometry, and a token read-out without it must rebuild that layout from the tokens. So
    each layer's read-out sees the patch's position too (a one-hot next to its token, i.e. a
    per-patch intercept), and what it gains over the floor is what the tokens know of the scene."""
    (fit_x, fit_y, fit_ok), (test_x, test_y, test_ok) = fit, test

    def position(n):
        return np.eye(slots, dtype=np.float32)[np.arange(n) % slots]  # [n*slots, slots]

    inputs = {"position": (position(len(fit_y)), position(len(test_y)))}
    for name in fit_x:
        inputs[name] = (np.concatenate([inputs["position"][0], fit_x[name]], axis=1),
                        np.concatenate([inputs["position"][1], test_x[name]], axis=1))
    out = {}
    for name, (x_fit, x_test) in inputs.items():
        model = ridge_fit(x_fit[fit_ok], fit_y[fit_ok], alpha)
        pred, truth = ridge_predict(x_test[test_ok], model), test_y[test_ok]
        r2 = 1 - ((pred - truth) ** 2).sum(0) / ((truth - truth.mean(0)) ** 2).sum(0)
        out[name] = {"r2": dict(zip(CHANNELS, r2.round(4).tolist())),
                     "point_error_cm": float(np.linalg.norm(pred[:, :3] - truth[:, :3], axis=1).mean() * 100),
                     "depth_error_cm": float(np.abs(pred[:, 3] - truth[:, 3]).mean() * 100)}
    return out


def format_probe(result: dict) -> str:
    lines = [f"linear read-out of geometry from the vision tokens (ridge, alpha {result['alpha']}; fit on "
             f"{result['fit_frames']} frames of training episodes, scored on {result['test_frames']} held-out;\n"
             f"  each layer's read-out also sees the patch's position, the floor's only input):",
             f"  {'tokens':<10} " + " ".join(f"{'R2 ' + c:>9}" for c in CHANNELS) + "   point err   depth err"]
    for name, r in result["layers"].items():
        lines.append(f"  {name:<10} " + " ".join(f"{r['r2'][c]:>9.3f}" for c in CHANNELS)
                     + f"   {r['point_error_cm']:>6.1f} cm   {r['depth_error_cm']:>6.1f} cm")
    return "\n".join(lines)
