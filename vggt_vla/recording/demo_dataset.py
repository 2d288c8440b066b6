"""Write the demo dataset: scripted-expert episodes of the demo env as a LeRobot v3.0 dataset.

    python scripts/make_demo_dataset.py --out data/demo

The dataset is LIBERO-shaped: two 128x128 cameras (`observation.images.image` agent view,
`observation.images.wrist_image` following the gripper), 8-D `observation.state`, 7-D `action` in
[-1, 1], 10 fps, one instruction per episode. Episode i is the env reset with seed `seed + i` and
ends when the instruction is carried out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from vggt_vla.constants import CAMERA_KEYS
from vggt_vla.data.writer import LeRobotWriter, available_av1_encoder
from vggt_vla.recording.demo_env_episodes import expert_episode, render_cameras
from vggt_vla.recording.schema import episode_features
from vggt_vla.sim.demo_env import STATE_NAMES, TASK_TYPES, DemoEnv

DEMO_FPS = 10
# Episodes of the demo dataset. The recipe trains on new scenes (data.live) and takes its
# validation episodes and statistics from these; trained on directly, a few hundred episodes are
# memorised (docs/experiments/2026-12-01-demo-recipe.md).
DEFAULT_EPISODES = 1000
# The executed action is the expert's plus noise n_t = correlation * n_(t-1) + N(0, action_noise^2)
# (demo_env_episodes.expert_episode); the expert's own action is recorded, so the data shows
# recoveries. The recorded dataset uses independent noise (0): on recorded episodes, correlated
# noise did not hold up over two training seeds. The recipe's live scenes use correlated noise
# (data.live.action_noise_correlation: 0.8 in configs/train_demo.yaml), where it does
# (docs/experiments/2026-12-01-demo-recipe.md).
DEFAULT_ACTION_NOISE = 0.3
DEFAULT_ACTION_NOISE_CORRELATION = 0.0


def record_demo_episode(env: DemoEnv, seed: int, rng: np.random.Generator, action_noise: float,
                        action_noise_correlation: float = 0.0) -> Optional[dict]:
    """One scripted episode as arrays, every frame rendered (None if the expert failed)."""
    episode = expert_episode(env, seed, rng, action_noise, action_noise_correlation)
    if episode is None:
        return None
    frames = [render_cameras(env, snap) for snap in episode.pop("snapshot")]
    return {**{k: np.stack([f[k] for f in frames]) for k in CAMERA_KEYS}, **episode}


def make_demo_dataset(out: Union[str, Path], *, num_episodes: int = DEFAULT_EPISODES, seed: int = 0,
                      video: bool = False, video_codec: Optional[str] = None,
                      action_noise: float = DEFAULT_ACTION_NOISE,
                      action_noise_correlation: float = DEFAULT_ACTION_NOISE_CORRELATION, image_size: int = 128,
                      num_objects: int = 3, task_types: Sequence[str] = TASK_TYPES, overwrite: bool = False,
                      progress: bool = True) -> Path:
    """Write the demo dataset to `out` and return its root. meta/info.json records the settings
    under "demo_recording" (see demo_recipe_mismatch)."""
    from tqdm import tqdm

    if num_episodes < 1:  # before the writer creates `out`: a refused call leaves nothing behind
        raise ValueError(f"num_episodes={num_episodes}: a dataset needs at least 1 episode")
    codec = video_codec
    if video and codec is None:
        codec = available_av1_encoder()
        if codec is None:
            raise RuntimeError("this PyAV build has no AV1 encoder; pass video_codec='libx264'")
    settings = {"episodes": num_episodes, "seed": seed, "action_noise": action_noise,
                "action_noise_correlation": action_noise_correlation, "image_size": image_size,
                "num_objects": num_objects, "task_types": list(task_types)}
    writer = LeRobotWriter(out, fps=DEMO_FPS, features=episode_features(image_size, STATE_NAMES, video),
                           version="v3.0", robot_type="demo_gripper", video_codec=codec or "libsvtav1",
                           overwrite=overwrite, extra_info={"demo_recording": settings})
    env = DemoEnv(image_size=image_size, num_objects=num_objects, task_types=task_types)
    rng = np.random.default_rng(seed)
    failed = 0
    for i in tqdm(range(num_episodes), desc="demo episodes", disable=not progress):
        episode = record_demo_episode(env, seed + i, rng, action_noise, action_noise_correlation)
        if episode is None:
            failed += 1
            continue
        writer.add_episode(episode, task=env.instruction)
    if failed:
        print(f"warning: the scripted expert failed {failed} of {num_episodes} episodes; they were skipped")
    return writer.finalize()


# What datasets written before the noise settings took the action_noise spelling call them.
_OLD_SETTING_NAMES = {"action_noise": "noise", "action_noise_correlation": "noise_correlation"}


def demo_recipe_mismatch(root: Union[str, Path]) -> Optional[str]:
    """None if the dataset at root was written with the demo recipe's settings (DEFAULT_EPISODES,
    DEFAULT_ACTION_NOISE, DEFAULT_ACTION_NOISE_CORRELATION, the default scene), "missing" if there is
    none, else what differs. quick_start.sh trains only on a matching dataset and never rewrites another."""
    info_path = Path(root) / "meta" / "info.json"
    if not info_path.exists():
        return "missing"
    info = json.loads(info_path.read_text())
    have = info.get("demo_recording")
    if have is None:  # written before the settings were recorded, with today's defaults but the size
        episodes = info.get("total_episodes")
        return None if episodes == DEFAULT_EPISODES else f"episodes {episodes} (the recipe: {DEFAULT_EPISODES})"
    have = {**{new: have[old] for new, old in _OLD_SETTING_NAMES.items() if old in have}, **have}
    want = {"episodes": DEFAULT_EPISODES, "action_noise": DEFAULT_ACTION_NOISE,
            "action_noise_correlation": DEFAULT_ACTION_NOISE_CORRELATION, "num_objects": 3,
            "task_types": list(TASK_TYPES)}
    diff = [f"{k} {have.get(k)} (the recipe: {v})" for k, v in want.items() if have.get(k) != v]
    return "; ".join(diff) or None
