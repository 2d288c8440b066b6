"""Recorded scene geometry: depth maps and camera parameters -> 3-D points per pixel and per patch.

A dataset with geometry carries, per camera key `observation.images.X` (keys in constants.py):

    observation.depth.X               uint16 [H, W, 1] PNG, depth in millimetres along the camera's
                                      optical axis (z), 0 = no depth; the pixels of the stored image
    observation.camera_intrinsics.X   float32 [4]: fx, fy, cx, cy in pixels of the stored image
    observation.camera_extrinsics.X   float32 [12]: camera-from-base [R | t], row-major, OpenCV axes
                                      (x right, y down, z forward), as VGGT's pose encoding uses

A pixel (u, v) (column, row; pixel centres at integer + 0.5) with depth z is the camera-frame point
x = (u - cx) z / fx, y = (v - cy) z / fy, and the base-frame point R^T (x_cam - t). The focal lengths
may be negative: the LeRobot LIBERO orientation stores images mirrored left-right (see
vggt_vla/sim/libero.py), which a negative fx describes exactly, with a proper rotation R.

The loader turns these into per-patch targets (`patch_geometry`): for each patch of the model's
grid, the mean base-frame point of its pixels and their mean depth, after the same flip, crop and
resize the image went through, so a target sits under the patch it belongs to.
GEOMETRY_CHANNELS names the four target channels.
"""

from __future__ import annotations

import io

import numpy as np

from vggt_vla.constants import camera_intrinsics_key

DEPTH_SCALE = 1000.0  # stored units per metre (millimetres)
GEOMETRY_CHANNELS = 4  # x, y, z (base frame, metres), depth (metres)


def encode_depth(depth_m: np.ndarray) -> np.ndarray:
    """Depth in metres [..., H, W] -> uint16 millimetres [..., H, W, 1]; not finite, <= 0 or beyond
    65.5 m -> 0 (no depth)."""
    d = np.asarray(depth_m, dtype=np.float64)
    mm = np.where(np.isfinite(d) & (d > 0), np.rint(d * DEPTH_SCALE), 0)
    mm = np.where(mm > np.iinfo(np.uint16).max, 0, mm)
    return mm.astype(np.uint16)[..., None]


def depth_png(depth_mm: np.ndarray) -> bytes:
    """uint16 [H, W, 1] -> 16-bit greyscale PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(depth_mm[..., 0]).astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def decode_depth(buf) -> np.ndarray:
    """16-bit greyscale PNG bytes -> depth in metres, float32 [H, W] (0 = no depth)."""
    from PIL import Image

    with Image.open(io.BytesIO(buf)) as img:
        if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise ValueError(f"a depth image is a 16-bit greyscale PNG, got PIL mode {img.mode!r}")
        mm = np.asarray(img, dtype=np.float32)
    return mm / np.float32(DEPTH_SCALE)


def unproject(depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray) -> np.ndarray:
    """depth [H, W] (metres), intrinsics [4] (fx, fy, cx, cy), extrinsics [12] (camera-from-base
    [R | t]) -> base-frame points [H, W, 3] (float32; NaN where depth is 0)."""
    fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
    rt = np.asarray(extrinsics, dtype=np.float64).reshape(3, 4)
    R, t = rt[:, :3], rt[:, 3]
    h, w = depth.shape
    z = np.where(depth > 0, depth, np.nan).astype(np.float64)  # [H, W]
    u = np.arange(w) + 0.5  # [W] pixel centres
    v = np.arange(h) + 0.5  # [H]
    cam = np.stack([(u[None, :] - cx) * z / fx, (v[:, None] - cy) * z / fy, z], axis=-1)  # [H, W, 3]
    return ((cam - t) @ R).astype(np.float32)  # R^T (x - t), row vectors: [H, W, 3]


def project(points: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray) -> np.ndarray:
    """Base-frame points [..., 3] -> (u, v, depth) [..., 3] in the stored image (the inverse of
    `unproject`)."""
    fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, dtype=np.float64).reshape(4))
    rt = np.asarray(extrinsics, dtype=np.float64).reshape(3, 4)
    cam = np.asarray(points, dtype=np.float64) @ rt[:, :3].T + rt[:, 3]  # [..., 3]
    z = cam[..., 2]
    return np.stack([cx + fx * cam[..., 0] / z, cy + fy * cam[..., 1] / z, z], axis=-1)


def patch_geometry(depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray, rows: np.ndarray,
                   cols: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch targets of one camera: the mean base-frame point and mean depth of each patch's
    pixels that have depth, on the (h, w) grid, row-major like the vision tokens.

    depth [H, W] metres (0 = none), intrinsics [4], extrinsics [12]; rows [S] / cols [S]: the stored
    pixel each pixel of the model's S x S input was taken from (the image transform's flip, crop and
    nearest resize; S a multiple of the grid). -> geometry [h*w, 4] (x, y, z, depth; 0 where a patch
    has no depth) and valid [h*w] bool. Points are averaged in the camera frame, then moved to the
    base frame: the mean commutes with the rigid transform.
    """
    h, w = grid
    s_h, s_w = len(rows), len(cols)
    if s_h % h or s_w % w:
        raise ValueError(f"a {s_h}x{s_w} input does not split into a {h}x{w} patch grid")
    fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics).reshape(4))
    z = depth[rows][:, cols].astype(np.float32)  # [S, S]
    ok = z > 0
    x = z * ((cols.astype(np.float32) + 0.5 - cx) / fx)[None, :]  # [S, S] camera frame
    y = z * ((rows.astype(np.float32) + 0.5 - cy) / fy)[:, None]

    def pool(a):  # [S, S] -> [h*w] sums per patch
        return a.reshape(h, s_h // h, w, s_w // w).sum(axis=(1, 3)).reshape(-1)

    count = pool(ok.astype(np.float32))  # [P]
    mean_cam = np.stack([pool(x), pool(y), pool(z)], axis=-1) / np.maximum(count, 1)[:, None]  # [P, 3]
    rt = np.asarray(extrinsics, dtype=np.float32).reshape(3, 4)
    points = (mean_cam - rt[:, 3]) @ rt[:, :3]  # R^T (x - t): [P, 3]
    valid = count > 0
    out = np.concatenate([points, mean_cam[:, 2:3]], axis=-1)  # [P, 4]
    out[~valid] = 0
    return out.astype(np.float32), valid


def check_geometry_features(features: dict, camera_features: list[str]) -> list[str]:
    """The geometry features a dataset lacks for `camera_features` ([] when it has them all)."""
    from vggt_vla.constants import camera_extrinsics_key, depth_key

    missing = []
    for cam in camera_features:
        for key in (depth_key(cam), camera_intrinsics_key(cam), camera_extrinsics_key(cam)):
            if key not in features:
                missing.append(key)
    return missing


def pose_target(extrinsics: np.ndarray) -> np.ndarray:
    """Camera-from-base extrinsics of S frames [S, 12] -> each frame's pose relative to frame 0, as
    VGGT expresses poses (frame 0 is the world): camera_s-from-camera_0 translation and unit
    quaternion (w, x, y, z; w >= 0), [S, 7]."""
    rt = np.asarray(extrinsics, dtype=np.float64).reshape(-1, 3, 4)
    R0, t0 = rt[0, :, :3], rt[0, :, 3]
    out = []
    for R, t in zip(rt[:, :, :3], rt[:, :, 3]):
        rel = R @ R0.T  # camera_s-from-camera_0
        out.append(np.concatenate([t - rel @ t0, _quaternion(rel)]))
    return np.stack(out).astype(np.float32)


def _quaternion(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    w = np.sqrt(max(0.0, 1.0 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = np.copysign(np.sqrt(max(0.0, 1.0 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1.0 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1.0 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    q = np.array([w, x, y, z])
    return q / np.linalg.norm(q)


class GeometryFrames:
    """Items for training a geometry model (VGGT-style) on a dataset with recorded geometry: the
    cameras of one moment as the frames of one scene, frame 0 (the first camera) as the world.

    item = {"images" [S, 3, R, R] in [0, 1], "depth" [S, R, R] metres, "points" [S, R, R, 3] in
            camera 0's frame (OpenCV axes), "valid" [S, R, R] bool, "pose" [S, 7] (pose_target)}
    R: the model's input size; depth and points are sampled nearest from the stored maps.
    """

    def __init__(self, source, rows: np.ndarray, size: int):
        if not source.has_geometry:
            raise ValueError("GeometryFrames needs a source opened with its geometry (LeRobotSource(geometry=True))")
        self.source, self.rows, self.size = source, np.asarray(rows), int(size)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        import torch

        from .transforms import ImageTransform

        row = int(self.rows[i])
        src = self.source
        cams = range(len(src.camera_keys))
        frames = [src.frame(c, row) for c in cams]
        images = ImageTransform(self.size).cameras(frames)  # [S, 3, R, R]
        params = [src.camera(c, row) for c in cams]
        rt0 = np.asarray(params[0][1], dtype=np.float64).reshape(3, 4)
        depth, points = [], []
        for c in cams:
            d = src.depth(c, row)  # [H, W]
            idx_r = ((np.arange(self.size) + 0.5) * d.shape[0] / self.size).astype(np.int64)
            idx_c = ((np.arange(self.size) + 0.5) * d.shape[1] / self.size).astype(np.int64)
            base = unproject(d, *params[c])[idx_r][:, idx_c]  # [R, R, 3] base frame (NaN: no depth)
            points.append(base @ rt0[:, :3].T + rt0[:, 3])  # camera 0's frame
            depth.append(d[idx_r][:, idx_c])
        depth, points = np.stack(depth).astype(np.float32), np.stack(points).astype(np.float32)
        valid = depth > 0
        points[~valid] = 0
        return {"images": images, "depth": torch.from_numpy(depth), "points": torch.from_numpy(points),
                "valid": torch.from_numpy(valid),
                "pose": torch.from_numpy(pose_target(np.stack([p[1] for p in params])))}
