"""Camera image transforms: uint8 frames -> the model's float input, optional flip and augmentation.

    t = ImageTransform(image_size=224, flip=True)                 # eval / inference
    t = ImageTransform(image_size=224, augment=True)              # training
    images = t(np.stack([agent_rgb, wrist_rgb]))                  # [V, 3, 224, 224] float32 in [0, 1]

The same transform (without augmentation) must be applied to live camera images at inference, so
a policy wrapper builds it from the same DataConfig the training used.

Per-sample work avoids torch's multi-threaded float kernels: on tiny tensors they spend more time
synchronising threads than working, badly so when the cores are busy (the training step in the
same process, other loaders). Resizing uses torch's uint8 bilinear kernel (single-threaded and
the fastest here); the float conversion and color jitter are numpy.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


class ImageTransform:
    """uint8 [V, H, W, 3] (or one [H, W, 3]) frames -> float32 [V, 3, S, S] in [0, 1].

    flip: rotate 180 degrees (LIBERO renders its cameras upside down).
    augment: random resized crop (area fraction in [crop_scale, 1], aspect kept) and color jitter
    (brightness, contrast, saturation factors in [1 - color_jitter, 1 + color_jitter]), drawn
    independently per camera from torch's RNG (which DataLoader seeds per worker).
    Resizing is bilinear (antialiased when shrinking), on uint8.
    """

    def __init__(self, image_size: int, flip: bool = False, augment: bool = False,
                 crop_scale: float = 0.9, color_jitter: float = 0.1):
        self.size = int(image_size)
        self.flip = flip
        self.augment = augment
        self.crop_scale = crop_scale
        self.color_jitter = color_jitter

    def __call__(self, frames) -> torch.Tensor:
        return self._apply(frames)[0]

    def _apply(self, frames) -> tuple[torch.Tensor, list]:
        """(images [V, 3, S, S], the crop window (top, left, height, width) of each camera)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]  # one camera [H, W, 3] -> [1, H, W, 3]
        if frames.dtype != np.uint8 or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 RGB frames [V, H, W, 3], got {frames.dtype} {frames.shape}")
        if self.flip:
            frames = frames[:, ::-1, ::-1]
        v, h, w, _ = frames.shape
        s = self.size
        windows = [(0, 0, h, w)] * v
        if self.augment or (h, w) != (s, s):
            # uint8 [V, 3, H, W] viewed channels-last: torch's fast single-threaded uint8 resize path
            x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
            if self.augment:
                windows = [self._crop_window(h, w) for _ in range(v)]
                x = torch.cat([_resize(x[i:i + 1, :, t:t + ch, lf:lf + cw], s)
                               for i, (t, lf, ch, cw) in enumerate(windows)])
            else:
                x = _resize(x, s)
            chw = x.numpy()  # [V, 3, S, S] uint8 (strided)
        else:
            chw = frames.transpose(0, 3, 1, 2)  # [V, 3, H, W] uint8 view
        out = np.empty((v, 3, s, s), dtype=np.float32)  # [V, 3, S, S]
        out[...] = chw
        out *= np.float32(1.0 / 255.0)
        if self.augment and self.color_jitter > 0:
            self._jitter(out)
        return torch.from_numpy(out), windows

    def cameras(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """One [H, W, 3] frame per camera -> [V, 3, S, S]: a single call when the sizes agree."""
        if all(f.shape == frames[0].shape for f in frames):
            return self(np.stack(frames))
        return torch.cat([self(f) for f in frames])  # cameras of different sizes: each on its own

    def with_geometry(self, frames: Sequence[np.ndarray], depths: Sequence[np.ndarray],
                      cameras: Sequence[tuple[np.ndarray, np.ndarray]],
                      grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames (as `cameras`), their depth maps [H, W] and camera parameters (intrinsics [4],
        extrinsics [12]) -> images [V, 3, S, S], per-patch geometry [V, h*w, 4] and its validity
        [V, h*w] (data/geometry.py). The depth goes through the same flip and crop as the image (and a
        nearest resize: a mean across an object's edge is no point), so each target lies under its patch."""
        from .geometry import patch_geometry

        frames = np.stack(frames)  # [V, H, W, 3]
        images, windows = self._apply(frames)
        v, h, w = frames.shape[:3]
        s = self.size
        out = np.empty((v, grid[0] * grid[1], 4), dtype=np.float32)
        valid = np.empty((v, grid[0] * grid[1]), dtype=bool)
        for i, (top, left, ch, cw) in enumerate(windows):
            if depths[i].shape != (h, w):
                raise ValueError(f"depth map {depths[i].shape} does not match the {h}x{w} frames")
            rows = top + ((np.arange(s) + 0.5) * ch / s).astype(np.int64)  # [S] rows of the (flipped) frame
            cols = left + ((np.arange(s) + 0.5) * cw / s).astype(np.int64)
            if self.flip:
                rows, cols = h - 1 - rows, w - 1 - cols
            out[i], valid[i] = patch_geometry(depths[i], *cameras[i], rows, cols, grid)
        return images, torch.from_numpy(out), torch.from_numpy(valid)

    def _crop_window(self, h: int, w: int) -> tuple[int, int, int, int]:
        """A random (top, left, height, width) window of an H x W image with an area fraction in
        [crop_scale, 1] and the image's aspect ratio."""
        r = torch.rand(3).tolist()
        scale = self.crop_scale + (1.0 - self.crop_scale) * r[0]
        ch, cw = max(1, round(h * math.sqrt(scale))), max(1, round(w * math.sqrt(scale)))
        top, left = int((h - ch) * r[1]), int((w - cw) * r[2])
        return top, left, ch, cw

    def _jitter(self, x: np.ndarray) -> None:
        """In place on [V, 3, S, S]: brightness, contrast, saturation."""
        j = self.color_jitter
        f = (1.0 + (torch.rand(x.shape[0], 3) * 2 - 1) * j).numpy().astype(np.float32)  # [V, 3]
        luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        for i in range(x.shape[0]):
            img = x[i]  # [3, S, S]
            img *= f[i, 0]
            gray = np.tensordot(luma, img, axes=1)  # [S, S]
            mean = gray.mean()
            img -= mean
            img *= f[i, 1]
            img += mean
            gray = np.tensordot(luma, img, axes=1)
            img -= gray
            img *= f[i, 2]
            img += gray
        np.clip(x, 0.0, 1.0, out=x)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, 3, h, w] -> [N, 3, size, size], bilinear, antialiased when shrinking."""
    shrink = x.shape[-1] > size or x.shape[-2] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
