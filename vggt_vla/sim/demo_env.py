"""A tiny language-conditioned tabletop: the closed-loop twin of the embedded demo dataset.

A top-down table holds a few colored objects (cubes and balls) at random positions and a round
gripper that moves in the plane. The instruction names one object and what to do with it:

    "move to the red cube"          touch the named object
    "push the blue ball left"       push it >= 0.25 in that direction (left/right/forward/backward)

so a policy has to read the instruction and find the object in the image. The gripper pushes any
object it runs into; objects do not collide with each other. Pure numpy + PIL.

    env = DemoEnv()
    obs = env.reset(seed=3)      # {"observation.images.image": uint8 [128,128,3], "observation.images.wrist_image": ...,
                                 #  "observation.state": float32 [8], "instruction": str}
    obs, success = env.step(scripted_action(env))

Cameras: `observation.images.image` sees the whole table from above (the agent view);
`observation.images.wrist_image` is a closer top-down view centred on the gripper, so it moves
with it. State (LIBERO-shaped, 8-D): x, y, z, 3 rotation entries, 2 gripper fingers; only x, y
change. Action (7-D, in [-1, 1]): dx, dy (scaled by STEP per step), then dz, 3 rotation deltas and
the gripper command, which this task ignores (the scripted expert sends 0, 0, 0, 0, -1).

Closed loop: `SIMULATOR` (bottom of this file) is this env as vggt_vla/closed_loop.py runs it
(`eval.py --sim demo`): episode k starts from seed `seed + k`, by default from EVAL_SEEDS, which
the dataset's seeds (0..episodes-1) never reach. This file holds the env and its expert only;
episodes are run by closed_loop.py: `python scripts/eval.py --sim demo --policy scripted` scores
the expert, `--policy random` the chance level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from vggt_vla.constants import CAMERA_KEYS, STATE_KEY
from vggt_vla.sim.protocol import EnvOptions, Episode, Simulator

STATE_NAMES = ["x", "y", "z", "ax", "ay", "az", "gripper_l", "gripper_r"]
COLORS = {"red": (215, 45, 40), "green": (40, 170, 70), "blue": (45, 85, 220), "yellow": (235, 200, 35)}
SHAPES = ("cube", "ball")
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "forward": (0.0, 1.0), "backward": (0.0, -1.0)}
TASK_TYPES = ("reach", "push")

STEP = 0.045           # gripper travel per step at |action| = 1 (table spans [-1, 1])
GRIPPER_R = 0.07
OBJECT_R = 0.11
BOUND = 0.95           # gripper and object centres stay inside [-BOUND, BOUND]
PUSH_DISTANCE = 0.25   # a push succeeds once the object moved this far along the direction
WRIST_HALF = 0.45      # the wrist camera sees [x - WRIST_HALF, x + WRIST_HALF] (and y)
TABLE = (205, 185, 150)
OUTSIDE = (90, 80, 70)
GRIPPER = (60, 60, 65)


@dataclass
class SceneObject:
    color: str
    shape: str
    pos: np.ndarray  # [2]

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


class DemoEnv:
    """reset(seed) -> obs; step(action) -> (obs, success). An episode is over (`done`) on success
    or after `max_steps` steps."""

    camera_keys = CAMERA_KEYS

    def __init__(self, image_size: int = 128, num_objects: int = 3, max_steps: int = 80,
                 task_types: Sequence[str] = TASK_TYPES):
        if not 1 <= num_objects <= 5:
            raise ValueError(f"num_objects={num_objects} must be in 1..5 (the table fits no more)")
        bad = [t for t in task_types if t not in TASK_TYPES]
        if bad or not task_types:
            raise ValueError(f"task_types {list(task_types)}: choose from {list(TASK_TYPES)}")
        self.image_size = image_size
        self.num_objects = num_objects
        self.max_steps = max_steps
        self.task_types = tuple(task_types)
        self.objects: list[SceneObject] = []
        self.gripper = np.zeros(2)
        self.steps = 0
        self.success = False

    # ----------------------------------------------------------------------------------------
    def reset(self, seed: Optional[int] = None) -> dict:
        self.draw_scene(seed)
        return self.observation()

    def draw_scene(self, seed: Optional[int] = None) -> None:
        """reset without rendering: the scene, the gripper and the instruction drawn from `seed`."""
        rng = np.random.default_rng(seed)
        self.task = self.task_types[rng.integers(len(self.task_types))]
        combos = [(c, s) for c in COLORS for s in SHAPES]
        picks = rng.choice(len(combos), size=self.num_objects, replace=False)
        self.gripper = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.9, -0.75)])
        positions: list[np.ndarray] = []
        tries = 0
        while len(positions) < self.num_objects:  # rejection sampling keeps objects apart
            tries += 1
            if tries > 100_000:
                raise RuntimeError(f"cannot place {self.num_objects} objects apart; use fewer")
            p = rng.uniform(-0.55, 0.55, size=2)
            if all(_norm(p - q) > 3 * OBJECT_R for q in positions) and \
                    _norm(p - self.gripper) > OBJECT_R + GRIPPER_R + 0.3:
                positions.append(p)
        self.objects = [SceneObject(*combos[i], pos=p) for i, p in zip(picks, positions)]
        self.target = int(rng.integers(self.num_objects))
        self.target_start = self.objects[self.target].pos.copy()  # not `start`: that is the protocol method
        if self.task == "push":
            self.direction_name = list(DIRECTIONS)[rng.integers(len(DIRECTIONS))]
            self.direction = np.array(DIRECTIONS[self.direction_name])
            self.instruction = f"push the {self.objects[self.target].name} {self.direction_name}"
        else:
            self.direction_name, self.direction = None, None
            self.instruction = f"move to the {self.objects[self.target].name}"
        self.steps = 0
        self.success = False

    def step(self, action) -> tuple[dict, bool]:
        self.move(action)
        return self.observation(), self.success

    def move(self, action) -> None:
        """step without rendering: move the gripper, shove what it touches, update `success`."""
        # _clip and _norm give np.clip's and np.linalg.norm's exact values at half the cost: the
        # live scenes (data.live) run this ~300,000 times when training starts.
        a = _clip(np.asarray(action, dtype=np.float64).reshape(-1)[:2], -1.0, 1.0)
        self.gripper = _clip(self.gripper + a * STEP, -BOUND, BOUND)
        reach = OBJECT_R + GRIPPER_R
        for obj in self.objects:  # the gripper shoves whatever it overlaps out of its way
            delta = obj.pos - self.gripper
            dist = _norm(delta)
            if dist < reach:
                normal = delta / dist if dist > 1e-9 else np.array([0.0, 1.0])
                obj.pos = _clip(self.gripper + normal * reach, -BOUND + OBJECT_R, BOUND - OBJECT_R)
                # An object stuck at the table edge stops the gripper instead.
                delta = self.gripper - obj.pos
                d = _norm(delta)
                if d < reach - 1e-9:
                    self.gripper = obj.pos + (delta / d if d > 1e-9 else -normal) * reach
        self.steps += 1
        self.success = self.success or self._solved()

    def snapshot(self) -> np.ndarray:
        """Everything that moves: the gripper and each object's position, [1 + num_objects, 2]."""
        return np.array([self.gripper] + [obj.pos for obj in self.objects])

    def restore(self, snapshot: np.ndarray) -> None:
        """Put the gripper and the objects back where `snapshot` saw them (to render that frame)."""
        self.gripper = snapshot[0].copy()
        for obj, pos in zip(self.objects, snapshot[1:]):
            obj.pos = pos.copy()

    @property
    def done(self) -> bool:
        return self.success or self.steps >= self.max_steps

    def _solved(self) -> bool:
        obj = self.objects[self.target]
        if self.task == "reach":
            return _norm(obj.pos - self.gripper) <= OBJECT_R + GRIPPER_R + 0.02
        return float(np.dot(obj.pos - self.target_start, self.direction)) >= PUSH_DISTANCE

    # ---------------------------------------------------------------- the closed-loop protocol
    def start(self, episode: Episode) -> dict:
        return self.reset(seed=episode.seed)

    def tags(self) -> dict[str, str]:
        """The instruction type, and whether another object shares the target's colour (then
        only its shape tells it apart)."""
        return {"instruction": self.task if self.direction_name is None else f"{self.task} {self.direction_name}",
                "target colour": "shared with another object" if self.target_colour_shared() else "unique"}

    def target_colour_shared(self) -> bool:
        """Another object has the target's colour: only the shape word tells them apart (2 scenes
        in 7 with 3 objects)."""
        target = self.objects[self.target]
        return any(o.color == target.color for o in self.objects if o is not target)

    def video_frame(self) -> np.ndarray:
        obs = self.observation()
        return np.concatenate([obs[k] for k in self.camera_keys], axis=1)  # [S, 2S, 3]

    def close(self) -> None:
        pass

    # ----------------------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        """[8] float32: x, y, z, rotation (3), finger positions (open)."""
        return np.array([self.gripper[0], self.gripper[1], 0.1, 0.0, 0.0, 0.0, 0.04, -0.04], dtype=np.float32)

    def observation(self) -> dict:
        return {
            CAMERA_KEYS[0]: self.render(np.zeros(2), 1.0, gripper_marker=True),
            CAMERA_KEYS[1]: self.render(self.gripper, WRIST_HALF, gripper_marker=False),
            STATE_KEY: self.state(),
            "instruction": self.instruction,
        }

    def render(self, center: np.ndarray, half: float, gripper_marker: bool) -> np.ndarray:
        """Top-down view of the square [center - half, center + half]: [S, S, 3] uint8."""
        from PIL import Image, ImageDraw

        s = self.image_size
        px = s / (2 * half)  # pixels per table unit

        def to_px(p):  # world (x right, y forward) -> image (column, row)
            return ((p[0] - center[0] + half) * px, (center[1] + half - p[1]) * px)

        img = Image.new("RGB", (s, s), OUTSIDE)
        draw = ImageDraw.Draw(img)
        (x0, y0), (x1, y1) = to_px((-1.0, 1.0)), to_px((1.0, -1.0))
        draw.rectangle([x0, y0, x1, y1], fill=TABLE)
        r = OBJECT_R * px
        for obj in self.objects:
            cx, cy = to_px(obj.pos)
            box = [cx - r, cy - r, cx + r, cy + r]
            if obj.shape == "ball":
                draw.ellipse(box, fill=COLORS[obj.color])
            else:
                k = 0.88  # a cube's footprint looks about as large as a ball's
                draw.rectangle([cx - k * r, cy - k * r, cx + k * r, cy + k * r], fill=COLORS[obj.color])
        gx, gy = to_px(self.gripper)
        g = GRIPPER_R * px
        if gripper_marker:
            draw.ellipse([gx - g, gy - g, gx + g, gy + g], fill=GRIPPER, outline=(240, 240, 240))
        else:  # the wrist camera sees its two fingers either side of the image centre
            w = max(1.0, 0.25 * g)
            for side in (-1, 1):
                fx = gx + side * g
                draw.rectangle([fx - w, gy - g, fx + w, gy + g], fill=GRIPPER)
        return np.asarray(img)


# --------------------------------------------------------------------------------------------
# Scripted expert
# --------------------------------------------------------------------------------------------


def _toward(env: DemoEnv, goal: np.ndarray, slow_within: float = STEP) -> np.ndarray:
    delta = goal - env.gripper
    dist = _norm(delta)
    speed = min(1.0, dist / slow_within)
    return delta / dist * speed if dist > 1e-9 else np.zeros(2)


def scripted_action(env: DemoEnv) -> np.ndarray:
    """The expert: a function of the current scene only (robust to perturbed states)."""
    obj = env.objects[env.target].pos
    contact = OBJECT_R + GRIPPER_R
    if env.task == "reach":
        xy = _toward(env, obj)
    else:
        d = env.direction
        p = np.array([-d[1], d[0]])  # perpendicular to the push direction
        rel = env.gripper - obj
        u, v = float(rel @ d), float(rel @ p)  # along / across the push direction
        behind = obj - d * (contact + 0.03)
        if -contact - 0.09 < u < -contact + 0.02 and abs(v) < 0.05:
            xy = d + p * min(max(-v / STEP, -1.0), 1.0)  # in line behind it: push, re-centring
            xy = xy / max(1.0, float(np.abs(xy).max()))
        elif _segment_distance(obj, env.gripper, behind) >= contact + 0.01:
            xy = _toward(env, behind)
        else:  # the way to the behind point crosses the object: circle around it
            angle = np.arctan2(rel[1], rel[0])
            diff = (np.arctan2(-d[1], -d[0]) - angle + np.pi) % (2 * np.pi) - np.pi
            nxt = angle + np.sign(diff) * min(abs(diff), 0.7)
            xy = _toward(env, obj + (contact + 0.1) * np.array([np.cos(nxt), np.sin(nxt)]))
    return np.array([xy[0], xy[1], 0.0, 0.0, 0.0, 0.0, -1.0], dtype=np.float32)


class DemoExpert:
    """scripted_action as an actor (reset / select_action), for the closed-loop runner."""

    def __init__(self, env: DemoEnv):
        self.env = env

    def reset(self) -> None:
        pass

    def select_action(self, obs: dict) -> np.ndarray:
        return scripted_action(self.env)


def _segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = min(max(float((point - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0), 1.0)
    return _norm(a + t * ab - point)


def _norm(v: np.ndarray) -> float:
    """np.linalg.norm of a vector (the same value: it computes sqrt(dot(v, v))), without its overhead."""
    return math.sqrt(np.dot(v, v))


def _clip(v: np.ndarray, low: float, high: float) -> np.ndarray:
    """np.clip (the same values, NaN included), without its overhead."""
    return np.minimum(np.maximum(v, low), high)


EVAL_SEEDS = range(100_000, 100_100)  # disjoint from the dataset's seeds (0..num_episodes-1)


def demo_episodes(options: EnvOptions, tasks: Optional[list[int]], per_task: int,
                  seed: Optional[int], first_state: int = 0) -> list[Episode]:
    """Episode k: a scene drawn from seed `seed + k` (default: EVAL_SEEDS, beyond the dataset's)."""
    if first_state:
        raise ValueError("the demo env has no fixed initial states (each episode draws its scene from its "
                         "seed); drop --first_state and pass --seed for other scenes")
    if options.suite not in (None, "demo"):
        raise ValueError(f"the demo env has no suite {options.suite!r}; drop --suite")
    if options.scenes is not None:
        raise ValueError("the demo env always draws its scenes from the episode seeds; drop --scenes")
    if tasks not in (None, [0]):
        raise ValueError(f"the demo env has one task (0), not {tasks}; drop --tasks")
    if per_task < 1:
        raise ValueError(f"episodes={per_task}: run at least 1")
    first = EVAL_SEEDS.start if seed is None else seed
    return [Episode(seed=first + k) for k in range(per_task)]


def make_demo_env(options: EnvOptions, task: int) -> DemoEnv:
    if options.fast_render:
        raise ValueError("the demo env has no fast_render mode; drop --fast_render")
    if options.camera_shift is not None:
        raise ValueError("the demo env's cameras cannot be shifted; drop --camera_shift")
    if options.max_mesh_faces is not None:
        raise ValueError("the demo env draws boxes, not meshes; drop --max_mesh_faces")
    return DemoEnv(image_size=options.camera_size or 128, max_steps=options.max_steps or 80)


def demo_versions() -> dict:
    return {}  # the env ships with this repository: its commit is the version


SIMULATOR = Simulator(name="demo", episodes=demo_episodes, make_env=make_demo_env, make_expert=DemoExpert,
                      versions=demo_versions)

