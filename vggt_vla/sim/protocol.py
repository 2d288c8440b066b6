"""What the closed-loop runner (vggt_vla/closed_loop.py) needs from a simulator.

A simulator is one file in vggt_vla/sim/ holding
  * an env class that follows `ClosedLoopEnv` (start an episode, step it, say when it is done), and
  * a `Simulator` value that tells the runner which episodes to run and how to build the env and
    the scripted expert,
plus one entry in `closed_loop.SIMULATORS`. The runner does the rest for every simulator alike:
worker processes, per-episode seeding, the policy's camera keys, success rates with intervals,
the per-task table and category breakdown, and MP4s. See sim/demo_env.py (one task, a new scene
per seed) and sim/libero.py (tasks with fixed initial states) for the two there are.

Nothing here imports torch, the policy or the data package: envs stay usable on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import numpy as np


@dataclass(frozen=True)
class Episode:
    """One closed-loop episode to run: everything that decides its start."""

    seed: int            # seeds the env's randomness and the policy's sampling
    task: int = 0        # task id within the suite (the demo has a single task family, 0)
    init_state: Optional[int] = 0  # the task's fixed initial state (LIBERO), or None: a scene drawn
                                   # from seed (LIBERO demonstrations; the demo env always does)
    redraw_fixtures: bool = False  # LIBERO, a drawn scene: started as a fixed state is (LiberoEnv.reset)


@dataclass(frozen=True)
class EnvOptions:
    """How to build an env; a field a simulator cannot honour is rejected by its make_env."""

    suite: Optional[str] = None        # task suite (LIBERO: libero_spatial, ...; None: the default)
    camera_size: Optional[int] = None  # square render resolution (None: the simulator's default)
    fast_render: bool = False          # cheaper rendering; must match the training data
    max_steps: Optional[int] = None    # policy steps per episode (None: the simulator's cap)
    cameras: bool = True               # False: state-only observations (a privileged expert needs none)
    # A viewpoint perturbation: the agent-view camera moved sideways by this many metres (its own
    # x axis) and turned by this many degrees about the vertical; None: the benchmark's camera.
    camera_shift: Optional[tuple[float, float]] = None
    # Visual meshes with more triangles than this are rendered from simplified copies (LIBERO:
    # sim/light_meshes.py); None: as shipped.
    max_mesh_faces: Optional[int] = None
    # Which scenes episodes start from. None: the simulator's evaluation scenes (LIBERO: the
    # benchmark's fixed initial states); "sampled": new ones drawn from the episode seeds, like the
    # demonstrations' (the training distribution, unseen scenes); "redrawn": those with the fixtures
    # drawn again, as the fixed states are started (LIBERO only).
    scenes: Optional[str] = None


class Actor(Protocol):
    """A policy or a scripted expert: `Policy` (vggt_vla/policy.py) is one."""

    def reset(self) -> None: ...

    def select_action(self, obs: dict) -> np.ndarray: ...


class ClosedLoopEnv(Protocol):
    """A language-conditioned env in the project's observation format: obs holds the cameras under
    `camera_keys` (uint8 [H, W, 3]), "observation.state" and "instruction"."""

    camera_keys: tuple[str, ...]
    instruction: str
    steps: int        # policy steps taken in this episode
    success: bool
    max_steps: int

    def start(self, episode: Episode) -> dict:
        """Begin `episode` and return the first observation."""

    def step(self, action: np.ndarray) -> tuple[dict, bool]:
        """Apply one action: (observation, success so far)."""

    @property
    def done(self) -> bool:
        """Success, or out of steps."""

    def tags(self) -> dict[str, str]:
        """Categories of this episode for the success breakdown (e.g. the instruction type)."""

    def video_frame(self) -> np.ndarray:
        """The cameras side by side, upright, at the current state: uint8 [H, W', 3] (rendered
        even when the env runs without cameras)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Simulator:
    """A simulator as the runner sees it. Module-level functions and classes only (no lambdas):
    it is pickled to the worker processes."""

    name: str
    # (options, tasks or None for all, episodes per task, first seed or None, first fixed initial
    # state) -> the episodes to run; a simulator without fixed initial states rejects a first state > 0
    episodes: Callable[[EnvOptions, Optional[list[int]], int, Optional[int], int], list[Episode]]
    make_env: Callable[[EnvOptions, int], ClosedLoopEnv]   # (options, task id) -> env
    make_expert: Callable[[ClosedLoopEnv], Actor]          # the privileged scripted expert of an env
    versions: Callable[[], dict]                           # package versions recorded with results
