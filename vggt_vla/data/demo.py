"""The embedded demo dataset: scripted episodes of `vggt_vla.sim.demo_env`, as LeRobot v3.0.

    python scripts/make_demo_dataset.py --out data/demo            # PNG images in parquet
    python scripts/make_demo_dataset.py --out data/demo_video --video   # AV1 mp4 instead

LIBERO-shaped: two 128x128 cameras (`observation.images.image` agent view,
`observation.images.wrist_image` following the gripper), 8-D `observation.state`, 7-D `action` in
[-1, 1], 10 fps, one instruction per episode. Episode i is the env reset with seed `seed + i`
and ends when the instruction is carried out.

The recorded action is the expert's; the executed one has Gaussian noise added (`noise`), so the
data also covers states slightly off the expert's path and a cloned policy learns to recover.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..constants import ACTION_NAMES, CAMERA_KEYS, STATE_KEY
from ..sim.demo_env import STATE_NAMES, TASK_TYPES, DemoEnv, scripted_action
from .writer import LeRobotWriter, available_av1_encoder

FPS = 10
# Episodes the demo recipe trains on. With 200 the policy memorised the scenes (train L1 fell,
# validation L1 stayed flat); see ARCHITECTURE_ANALYSIS.md section 7. 1,000 take ~30 s to write.
DEFAULT_EPISODES = 1000


def demo_features(image_size: int = 128, video: bool = False) -> dict:
    cam = {"dtype": "video" if video else "image", "shape": [image_size, image_size, 3],
           "names": ["height", "width", "channels"]}
    return {
        CAMERA_KEYS[0]: dict(cam),
        CAMERA_KEYS[1]: dict(cam),
        STATE_KEY: {"dtype": "float32", "shape": [len(STATE_NAMES)], "names": STATE_NAMES},
        "action": {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": ACTION_NAMES},
    }


def record_episode(env: DemoEnv, seed: int, rng: np.random.Generator, noise: float) -> Optional[dict]:
    """One scripted episode as arrays (None if the expert failed, which the tests rule out)."""
    obs = env.reset(seed=seed)
    frames: dict[str, list] = {k: [] for k in (*CAMERA_KEYS, STATE_KEY, "action")}
    while not env.done:
        action = scripted_action(env)
        for k in (*CAMERA_KEYS, STATE_KEY):
            frames[k].append(obs[k])
        frames["action"].append(action)
        executed = action.copy()
        executed[:2] += rng.normal(0.0, noise, size=2) if noise > 0 else 0.0
        obs, _ = env.step(np.clip(executed, -1.0, 1.0))
    if not env.success:
        return None
    return {k: np.stack(v) for k, v in frames.items()}


def make_demo_dataset(out: Union[str, Path], *, num_episodes: int = DEFAULT_EPISODES, seed: int = 0,
                      video: bool = False, video_codec: Optional[str] = None, noise: float = 0.3,
                      image_size: int = 128, num_objects: int = 3,
                      task_types: Sequence[str] = TASK_TYPES, overwrite: bool = False,
                      progress: bool = True) -> Path:
    """Write the demo dataset to `out` and return its root."""
    from tqdm import tqdm

    codec = video_codec
    if video and codec is None:
        codec = available_av1_encoder()
        if codec is None:
            raise RuntimeError("this PyAV build has no AV1 encoder; pass video_codec='libx264'")
    writer = LeRobotWriter(out, fps=FPS, features=demo_features(image_size, video), version="v3.0",
                           robot_type="demo_gripper", video_codec=codec or "libsvtav1", overwrite=overwrite)
    env = DemoEnv(image_size=image_size, num_objects=num_objects, task_types=task_types)
    rng = np.random.default_rng(seed)
    failed = 0
    for i in tqdm(range(num_episodes), desc="demo episodes", disable=not progress):
        episode = record_episode(env, seed + i, rng, noise)
        if episode is None:
            failed += 1
            continue
        writer.add_episode(episode, task=env.instruction)
    if failed:
        print(f"warning: the scripted expert failed {failed} of {num_episodes} episodes; they were skipped")
    return writer.finalize()
