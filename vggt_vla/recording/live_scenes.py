"""LiveSceneFrames: training items from new scenes of the demo env, simulated when training starts.

    python scripts/train_vla.py --config demo          # configs/train_demo.yaml sets data.live.enabled

training/training_data.py builds it when data.live.enabled is set; nothing is written to disk.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from vggt_vla.config import LiveScenesConfig
from vggt_vla.constants import ACTION_KEY, CAMERA_KEYS, STATE_KEY
from vggt_vla.data.dataset import chunk_rows
from vggt_vla.recording.demo_env_episodes import expert_episode, render_cameras
from vggt_vla.sim.demo_env import DemoEnv

# The scenes of a run with train.seed s come from the random stream (LIVE_SEED, s), so a resumed
# run sees exactly the frames the uninterrupted one would have, and their seeds (63-bit draws) are
# not the small integers the datasets (0..N-1) and evaluation (eval.py --seed S) use.
LIVE_SEED = 4_242


class LiveSceneFrames(torch.utils.data.Dataset):
    """Training items (FrameDataset's format) from new scripted-expert episodes of the demo env.

    On construction the expert, with noise on the actions it executes, solves new scenes
    (simulated only, nothing rendered) until they hold `length` items: from each episode, every
    `live.frame_stride`-th frame from a random offset. Frames thus come from episodes in proportion
    to their length, as from a recorded dataset, and a scene gives ~27 / frame_stride items, each
    used once (the sampler spreads them over the run). An item is rendered when it is loaded. A run
    thus sees thousands of scenes, each frame once, where a recorded dataset of 1,000 episodes
    would show each of its scenes dozens of times and be learnt by heart
    (docs/experiments/2026-12-01-demo-recipe.md).

    length: items per epoch (the trainer asks for one epoch of max_steps batches).
    live: frame_stride, action_noise, action_noise_correlation and shared_colour (config.py's
    LiveScenesConfig documents each). A scene of the kind shared_colour draws is found by
    redrawing it (~30 us a draw).
    normalizer: the recorded dataset's statistics, so live and recorded frames share their units.
    """

    def __init__(self, length: int, live: LiveScenesConfig, *, chunk_size: int, transform, normalizer,
                 seed: int = 0, image_size: int = 128):
        started = time.perf_counter()
        self.length = int(length)
        self.chunk_size = int(chunk_size)
        self.transform = transform
        self.normalizer = normalizer
        self.shared_colour = live.shared_colour
        self.env = DemoEnv(image_size=image_size)
        self.scenes: list[dict] = []  # per episode: seed, instruction, snapshot, normalised state/action
        self.items: list[tuple[int, int]] = []  # (scene, frame) per item
        rng = np.random.default_rng((LIVE_SEED, int(seed)))
        while len(self.items) < self.length:
            scene_seed = self._scene_seed(rng)
            episode = expert_episode(self.env, scene_seed, rng, live.action_noise, live.action_noise_correlation)
            if episode is None:
                continue
            steps = len(episode[ACTION_KEY])
            first = int(rng.integers(live.frame_stride))
            self.items += [(len(self.scenes), t) for t in range(first, steps, live.frame_stride)]
            self.scenes.append({
                "seed": scene_seed, "instruction": self.env.instruction, "snapshot": episode["snapshot"],
                STATE_KEY: normalizer.normalize(STATE_KEY, episode[STATE_KEY]).astype(np.float32),  # [E, S]
                ACTION_KEY: normalizer.normalize(ACTION_KEY, episode[ACTION_KEY]).astype(np.float32),  # [E, A]
            })
        del self.items[self.length:]
        self.simulate_s = time.perf_counter() - started

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        scene_index, t = self.items[i]
        scene = self.scenes[scene_index]
        self.env.draw_scene(scene["seed"])
        frame = render_cameras(self.env, scene["snapshot"][t])
        state, action = scene[STATE_KEY], scene[ACTION_KEY]  # [E, S], [E, A]
        chunk, pad = chunk_rows(t, len(action), self.chunk_size)  # [T], [T]
        return {
            "images": self.transform.cameras([frame[k] for k in CAMERA_KEYS]),  # [V, 3, S, S]
            "instruction": scene["instruction"],
            "state": torch.from_numpy(state[t].copy()),  # [S]
            "actions": torch.from_numpy(action[chunk]),  # [T, A]
            "action_pad_mask": torch.from_numpy(pad),  # [T] bool, True = padded
            "goal_state": torch.from_numpy(state[-1].copy()),  # [S]: where the episode ends
        }

    def _scene_seed(self, rng: np.random.Generator) -> int:
        """A new scene's seed: any scene, or one of the kind (shared target colour or not) drawn
        with probability shared_colour."""
        if self.shared_colour is None:
            return int(rng.integers(1 << 62))
        shared = bool(rng.random() < self.shared_colour)
        while True:
            seed = int(rng.integers(1 << 62))
            self.env.draw_scene(seed)
            if self.env.target_colour_shared() == shared:
                return seed
