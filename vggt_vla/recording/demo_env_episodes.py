"""Episodes of the demo env's scripted expert as arrays, and their frames rendered afterwards.

The demo dataset (demo_dataset.py) renders every frame of an episode; the live scenes
(live_scenes.py) keep the arrays and render a frame only when training loads it. Nothing here is
an evaluation: closed-loop episodes of policies and experts are vggt_vla/closed_loop.py's.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from vggt_vla.constants import ACTION_KEY, CAMERA_KEYS, STATE_KEY
from vggt_vla.sim.demo_env import DemoEnv, scripted_action


def expert_episode(env: DemoEnv, seed: int, rng: np.random.Generator, action_noise: float,
                   action_noise_correlation: float = 0.0) -> Optional[dict]:
    """The scripted expert on the scene of `seed`, executing its action plus noise
    n_t = action_noise_correlation * n_(t-1) + N(0, action_noise^2) on (dx, dy), nothing rendered:
    per step the scene's snapshot [T, 1 + objects, 2] (DemoEnv.snapshot), the state [T, 8] and the
    expert's own action [T, 7]. None if the expert failed (the tests rule that out)."""
    env.draw_scene(seed)
    drift = np.zeros(2)
    rows: dict[str, list] = {"snapshot": [], STATE_KEY: [], ACTION_KEY: []}
    while not env.done:
        action = scripted_action(env)
        rows["snapshot"].append(env.snapshot())
        rows[STATE_KEY].append(env.state())
        rows[ACTION_KEY].append(action)
        executed = action.copy()
        if action_noise > 0:
            drift = action_noise_correlation * drift + rng.normal(0.0, action_noise, size=2)
            executed[:2] += drift
        env.move(executed)  # which clips it to [-1, 1]
    if not env.success:
        return None
    return {k: np.stack(v) for k, v in rows.items()}


def render_cameras(env: DemoEnv, snapshot: np.ndarray) -> dict[str, np.ndarray]:
    """Both cameras of `env`'s scene as `snapshot` saw it: {key: uint8 [S, S, 3]}."""
    env.restore(snapshot)
    obs = env.observation()
    return {k: obs[k] for k in CAMERA_KEYS}
