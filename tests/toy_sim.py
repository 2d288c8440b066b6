"""A toy simulator for the closed-loop runner tests: a point on a line must reach a goal.

It follows vggt_vla/sim/protocol.py the way a new simulator would (env + Simulator value), and
lives in an importable module so that spawned worker processes can unpickle it."""

from __future__ import annotations

import numpy as np

from vggt_vla.constants import CAMERA_KEYS, STATE_KEY
from vggt_vla.sim.protocol import EnvOptions, Episode, Simulator


class LineEnv:
    camera_keys = CAMERA_KEYS

    def __init__(self, options: EnvOptions, task: int):
        self.size = options.camera_size or 8
        self.max_steps = options.max_steps or 30
        self.task = task
        self.instruction = f"go to {task}"

    def start(self, episode: Episode) -> dict:
        rng = np.random.default_rng(episode.seed)
        self.x = float(rng.uniform(-1, 1))
        self.goal = float(self.task) * 0.5 - 0.25
        self.steps, self.success = 0, False
        return self._obs()

    def step(self, action):
        self.x += float(np.clip(action[0], -1, 1)) * 0.1
        self.steps += 1
        self.success = self.success or abs(self.x - self.goal) < 0.1
        return self._obs(), self.success

    @property
    def done(self) -> bool:
        return self.success or self.steps >= self.max_steps

    def tags(self) -> dict:
        return {"side": "left" if self.goal < 0 else "right"}

    def video_frame(self) -> np.ndarray:
        return np.concatenate([self._obs()[k] for k in self.camera_keys], axis=1)

    def close(self) -> None:
        pass

    def _obs(self) -> dict:
        img = np.zeros((self.size, self.size, 3), np.uint8)
        img[:, int((self.x + 1) / 2 * (self.size - 1)) % self.size] = 255
        state = np.array([self.x, self.goal, 0, 0, 0, 0, 0, 0], np.float32)
        return {**{k: img for k in self.camera_keys}, STATE_KEY: state, "instruction": self.instruction}


class LineExpert:
    def __init__(self, env: LineEnv):
        self.env = env

    def reset(self) -> None:
        pass

    def select_action(self, obs: dict) -> np.ndarray:
        x, goal = obs[STATE_KEY][:2]
        return np.array([np.clip((goal - x) / 0.1, -1, 1), 0, 0, 0, 0, 0, -1], np.float32)


def episodes(options: EnvOptions, tasks, per_task: int, seed, first_state: int = 0) -> list[Episode]:
    if first_state:
        raise ValueError("the line env has no fixed initial states")
    first = 7 if seed is None else seed
    return [Episode(seed=first + 100 * t + k, task=t) for t in (tasks or [0, 1]) for k in range(per_task)]


def versions() -> dict:
    return {"line": "1.0"}


SIMULATOR = Simulator(name="line", episodes=episodes, make_env=LineEnv, make_expert=LineExpert, versions=versions)
