"""The LeRobot feature schema the recorders write: LIBERO's layout (lerobot/libero_*_image)."""

from __future__ import annotations

from typing import Sequence

from vggt_vla.constants import (ACTION_KEY, ACTION_NAMES, CAMERA_KEYS, STATE_KEY, camera_extrinsics_key,
                                camera_intrinsics_key, depth_key)


def episode_features(image_size: int, state_names: Sequence[str], video: bool = False,
                     geometry: bool = False) -> dict:
    """The two cameras (PNG frames in parquet, or AV1 video), the 8-D state and the 7-D action;
    with geometry, each camera's depth map and parameters too (vggt_vla/data/geometry.py)."""
    cam = {"dtype": "video" if video else "image", "shape": [image_size, image_size, 3],
           "names": ["height", "width", "channels"]}
    features = {**{key: dict(cam) for key in CAMERA_KEYS},
                STATE_KEY: {"dtype": "float32", "shape": [len(state_names)], "names": list(state_names)},
                ACTION_KEY: {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": ACTION_NAMES}}
    if geometry:
        for key in CAMERA_KEYS:
            features[depth_key(key)] = {"dtype": "image", "shape": [image_size, image_size, 1],
                                        "names": ["height", "width", "depth_mm"]}
            features[camera_intrinsics_key(key)] = {"dtype": "float32", "shape": [4],
                                                    "names": ["fx", "fy", "cx", "cy"]}
            features[camera_extrinsics_key(key)] = {"dtype": "float32", "shape": [12],
                                                    "names": [f"cam_from_base_{r}{c}" for r in range(3)
                                                              for c in range(4)]}
    return features
