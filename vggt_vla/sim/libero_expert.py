"""A scripted pick-and-place expert for LIBERO, driven by privileged simulator state.

    from vggt_vla.sim.libero import LiberoEnv
    from vggt_vla.sim.libero_expert import LiberoExpert
    env = LiberoEnv("libero_spatial", task_id=0, cameras=False)   # the expert needs no pictures
    expert = LiberoExpert(env)
    obs = env.reset(init_state=0); expert.reset()
    while not env.done:
        obs, success = env.step(expert.select_action(obs))

It reads the task's goal from the BDDL file (`(On <object> <target>)`, the goal of every
libero_spatial task and many others) and the objects' poses and collision geometry from MuJoCo,
then runs a fixed sequence of phases, with PD control of the end-effector position (the arm lags
its commands; the damping term stops overshoot) and the hand kept pointing down, turned about the
vertical at most:

    approach  above the grasp point, just high enough to clear what lies under the way there
    descend   to the grasp point (ends early if a fingertip comes to rest on the rim)
    grasp     close the fingers
    slide_out only when something overhangs the object (a cabinet top over a half-open drawer):
              drag it out sideways first
    lift      straight up to the carry height (the held object clears everything under its path)
    carry     until the object's origin is over the target's origin for a few steps (the success
              test compares those two points), tracking where the object really sits in the hand
    lower     until the object rests on the target
    release   open the fingers, then back off upwards

Wide objects (bowls) are pinched at the rim, the rim taken in the object's own frame (a bowl tilted
on a ramekin is grasped where its rim is): of 12 points around it, the one whose fingers have the
most room from other objects' parts, within easy reach of the arm, turning the hand least, and not
under an overhang. Narrow objects are grasped across their centre. A grasp that slips (the object
drifts from the hand) is retried from `approach`, three times at most.

Success per libero_spatial task, measured: docs/experiments/2026-11-21-libero-cpu.md. Task 4 (the
bowl in the top drawer) is the hard one. The cabinet's top panel overhangs the half-open drawer by
4-7 cm, 1 cm above the bowl's rim: rim points under it are skipped and the bowl is dragged out from
under it before lifting. The task-4 failures that remain run out of steps (220): the fingers stop
on something above the chosen rim point and the descent waits 60 steps before grasping anyway,
then the grasp slips and is retried.

Score it with the one episode runner (vggt_vla/closed_loop.py), per task with 95% intervals, in
parallel, with videos if asked: `python scripts/eval.py --sim libero --policy scripted
--episodes_per_task 10` (--tasks 0,4 for some tasks; each episode's record says its initial state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .libero import LiberoEnv

POS_SCALE = 0.05      # metres per unit of position action (robosuite OSC_POSE output_max)
ROT_SCALE = 0.5       # radians per unit of rotation action
OPEN, CLOSE = -1.0, 1.0
GRIPPER_SPAN = 0.075  # objects narrower than this (m) are grasped across their centre
RIM_INSET = 0.005     # fingers close on the wall this far inside the outer rim of a wide object
MAX_HEIGHT = 1.2      # the hand stays below this (m, world z; the table top is at ~0.9)
CLEARANCE = 0.05      # carry objects this far above the highest thing under the path
RIM_DEPTH = 0.015     # fingertip centres this far below the top of a rim
SLIP = 0.02           # a held object that drifts this far (m) from the hand has slipped
MAX_REGRASPS = 3
HAND_HEIGHT = 0.12    # the fingers and hand occupy this much height above the fingertips (m)
COMFORT_REACH = 0.74  # horizontal distance (m) from the robot base beyond which grasps get awkward
KP, KD = 1.5, 2.0     # position gain (per step) and damping on the hand's per-step displacement


@dataclass
class Box:
    """World-aligned bounding box of an object's collision geometry."""
    lo: np.ndarray  # [3]
    hi: np.ndarray  # [3]

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def half_width(self) -> float:
        return float(max(self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]) / 2)


def _subtree_geoms(model, body_id: int) -> list[int]:
    """Collision geoms of `body_id` and every body below it."""
    geoms = []
    for g in range(model.ngeom):
        b = int(model.geom_bodyid[g])
        while b not in (body_id, 0):
            b = int(model.body_parentid[b])
        if b == body_id and (model.geom_contype[g] or model.geom_conaffinity[g]):
            geoms.append(g)
    return geoms


_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)


def _bounding_box(model, data, geoms: list[int], frame=None) -> Box:
    """Axis-aligned box around `geoms`, in the world frame or in `frame` = (origin, rotation)."""
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for g in geoms:
        centre, half = model.geom_aabb[g, :3], model.geom_aabb[g, 3:]
        world = (_CORNERS * half + centre) @ data.geom_xmat[g].reshape(3, 3).T + data.geom_xpos[g]
        if frame is not None:
            world = (world - frame[0]) @ frame[1]  # rows: R^T (p - origin)
        lo, hi = np.minimum(lo, world.min(0)), np.maximum(hi, world.max(0))
    return Box(lo, hi)


def _segment_box_distance(a: np.ndarray, b: np.ndarray, box: Box) -> float:
    """Horizontal distance from the segment a-b to `box` (0 when they overlap), sampled."""
    ts = np.linspace(0.0, 1.0, 21)[:, None]
    points = a[None] + ts * (b - a)[None]  # [21, 2]
    gap = np.maximum(np.maximum(box.lo[:2] - points, points - box.hi[:2]), 0.0)
    return float(np.linalg.norm(gap, axis=1).min())


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame axis-angle taking rotation matrix `current` to `target`."""
    r = target @ current.T
    angle = np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2 * np.sin(angle))
    return axis * angle


class LiberoExpert:
    """Policy-like (reset / select_action) scripted expert for `(On object target)` goals."""

    def __init__(self, env: LiberoEnv):
        self.env = env
        goals = self._inner.parsed_problem["goal_state"]
        on = [g for g in goals if g[0].lower() == "on"]
        if len(on) != 1 or len(goals) != 1:
            raise NotImplementedError(f"the scripted expert handles one (On object target) goal; task "
                                      f"{env.task.name!r} has goal {goals}")
        _, self.obj_name, self.target_name = on[0]
        self.reset()

    # ------------------------------------------------------------------ scene queries
    @property
    def _inner(self):
        return self.env._env.env

    def _body_id(self, name: str) -> int:
        import mujoco

        inner = self._inner
        obj = inner.objects_dict.get(name) or inner.fixtures_dict.get(name)
        if obj is None:
            raise KeyError(f"no object {name!r} in task {self.env.task.name!r}")
        return mujoco.mj_name2id(self.env.sim.model._model, mujoco.mjtObj.mjOBJ_BODY, obj.root_body)

    def _box(self, name: str) -> Box:
        if name not in self._geoms:
            self._geoms[name] = _subtree_geoms(self.env.sim.model._model, self._body_id(name))
        return _bounding_box(self.env.sim.model._model, self.env.sim.data._data, self._geoms[name])

    def _others(self) -> list[str]:
        inner = self._inner
        names = list(inner.objects_dict) + [n for n in inner.fixtures_dict if n != "main_table"]
        return [n for n in names if n not in (self.obj_name,)]

    def _eef(self) -> tuple[np.ndarray, np.ndarray]:
        ctrl = self._inner.robots[0].controller
        return np.array(self.env.raw["robot0_eef_pos"]), np.array(ctrl.ee_ori_mat)

    # ------------------------------------------------------------------ policy API
    def reset(self) -> None:
        self._geoms: dict[str, list[int]] = {}
        self.phase = "plan"
        self.t_phase = 0
        self.regrasps = 0
        self.hold_rot: Optional[np.ndarray] = None
        self.start_rot: Optional[np.ndarray] = None
        self.aligned = 0
        self.prev_pos: Optional[np.ndarray] = None
        self.vel = np.zeros(3)
        self.stalled = 0

    def select_action(self, obs: Optional[dict] = None) -> np.ndarray:
        pos, rot = self._eef()
        self.vel = pos - self.prev_pos if self.prev_pos is not None else np.zeros(3)
        self.prev_pos = pos
        if self.start_rot is None:
            self.start_rot = rot.copy()  # the hand keeps this orientation, turned about z at most
            self.hold_rot = rot.copy()
        action = getattr(self, f"_phase_{self.phase}")(pos)
        self.t_phase += 1
        rot_err = _rotation_error(self.hold_rot, rot)
        action[3:6] = np.clip(rot_err / ROT_SCALE * 2.0, -1.0, 1.0)
        return action.astype(np.float32)

    # ------------------------------------------------------------------ phases
    def _goto(self, phase: str) -> None:
        self.phase, self.t_phase, self.stalled = phase, 0, 0

    def _move(self, pos: np.ndarray, goal: np.ndarray, gripper: float, speed: float = 1.0) -> np.ndarray:
        # PD on position: the arm lags its commands and coasts on, the velocity term brakes it.
        delta = ((goal - pos) * KP - self.vel * KD) / POS_SCALE
        norm = np.abs(delta).max()
        if norm > speed:
            delta *= speed / norm
        return np.array([*delta, 0, 0, 0, gripper])

    def _path_top(self, start_xy: np.ndarray, end_xy: np.ndarray, margin: float) -> float:
        """Highest top of the other objects within `margin` of the straight path start -> end."""
        tops = [self._box(self.target_name).hi[2]]
        for name in self._others():
            box = self._box(name)
            if _segment_box_distance(start_xy, end_xy, box) < margin:
                tops.append(box.hi[2])
        return float(max(tops))

    def _carry_height(self, start_xy: np.ndarray, end_xy: np.ndarray) -> float:
        """The held object's bottom clears everything under its path by CLEARANCE; no higher (the
        arm's reach shrinks with height)."""
        obj = self._box(self.obj_name)
        top = max(self._path_top(start_xy, end_xy, obj.half_width + 0.01), obj.hi[2])
        return min(float(top + (obj.hi[2] - obj.lo[2]) + CLEARANCE), MAX_HEIGHT)

    def _approach_height(self, start_xy: np.ndarray, end_xy: np.ndarray) -> float:
        """The open fingers clear everything under the way to the grasp point."""
        top = max(self._path_top(start_xy, end_xy, 0.05), self._box(self.obj_name).hi[2])
        return min(top + CLEARANCE, MAX_HEIGHT)

    def _finger_axis(self) -> np.ndarray:
        """Horizontal unit vector along which the fingers close (the hand frame's x axis)."""
        axis = np.array(self._inner.robots[0].controller.ee_ori_mat[:, 0])
        axis[2] = 0
        return axis / np.linalg.norm(axis)

    def _phase_plan(self, pos):
        box = self._box(self.obj_name)
        centre = box.center
        yaw = 0.0
        if box.half_width * 2 <= GRIPPER_SPAN:
            self.grasp = np.array([*centre[:2], self._grasp_height(box)])
        else:  # a wide object: a point of its rim, turning the hand so the fingers close across it
            self.grasp, yaw = self._rim_grasp(box)
        grasp_xy = self.grasp[:2]
        self.hold_rot = _yaw_matrix(yaw) @ self.start_rot
        self.cruise = self._carry_height(grasp_xy, self._box(self.target_name).center[:2])
        self.hover = self._approach_height(pos[:2], grasp_xy)
        self._goto("approach")
        return self._phase_approach(pos)

    def _rim_grasp(self, box: Box) -> tuple[np.ndarray, float]:
        """The rim point (3-D, fingertip height) and hand yaw whose fingers have the most free room
        around them, preferring less turning and points within easy reach. The rim is taken in the
        object's own frame, so a tilted bowl (e.g. resting on a ramekin) is grasped where its rim
        really is."""
        data = self.env.sim.data._data
        body = self._body_id(self.obj_name)
        origin, rot = np.array(data.xpos[body]), np.array(data.xmat[body]).reshape(3, 3)
        local = _bounding_box(self.env.sim.model._model, data, self._geoms[self.obj_name], frame=(origin, rot))
        radius = local.half_width - RIM_INSET
        base_xy = np.array(self._inner.robots[0].base_pos)[:2]
        parts = self._part_boxes()
        fingers = self._finger_axis()
        base = np.arctan2(fingers[1], fingers[0])
        best, best_score = None, -np.inf
        for angle in np.deg2rad(np.arange(0, 360, 30)):
            u = np.array([np.cos(angle), np.sin(angle), 0.0])
            u_local = rot.T @ u
            u_local[2] = 0.0
            u_local /= np.linalg.norm(u_local)
            rim_local = np.array([*local.center[:2], local.hi[2]]) + radius * u_local
            rim = origin + rot @ rim_local
            grasp = np.array([rim[0], rim[1], rim[2] - RIM_DEPTH])
            yaw = (angle - base + np.pi / 2) % np.pi - np.pi / 2  # fingers are symmetric: |yaw| <= 90 deg
            pads = [grasp[:2] + 0.05 * u[:2], grasp[:2] - 0.05 * u[:2]]  # outer, inner finger (open)
            floor = grasp[2] - 0.02  # the fingertips' lowest point
            room = min(self._free_room(p, floor, parts) for p in [grasp[:2], *pads])
            reach = float(np.linalg.norm(grasp[:2] - base_xy))  # far points are at the arm's limit
            # Under an overhang (the cabinet top over a half-open drawer) the fingers cannot come down.
            covered = any(box.lo[2] > grasp[2] + 0.005 and np.all(box.lo[:2] <= grasp[:2])
                          and np.all(grasp[:2] <= box.hi[:2]) for box in parts)
            score = min(room, 0.04) - 0.01 * abs(yaw) - 2.0 * max(0.0, reach - COMFORT_REACH) - float(covered)
            if score > best_score:
                best, best_score = (grasp, float(yaw)), score
        return best

    def _grasp_height(self, box: Box) -> float:
        """Fingertips about 2/3 of the way down a narrow object's side. (Wide objects are pinched
        at the rim, RIM_DEPTH below its top edge: lower down, a bowl's wall curves inwards.)"""
        height = box.hi[2] - box.lo[2]
        return float(box.lo[2] + max(0.01, min(0.35 * height, height - 0.02)))

    def _part_boxes(self) -> list[Box]:
        """One box per collision geom of every other object: a cabinet's top panel and its open
        drawer are separate obstacles, not one big block."""
        model, data = self.env.sim.model._model, self.env.sim.data._data
        boxes = []
        for name in self._others():
            if name not in self._geoms:
                self._geoms[name] = _subtree_geoms(model, self._body_id(name))
            boxes += [_bounding_box(model, data, [g]) for g in self._geoms[name]]
        return boxes

    def _free_room(self, xy: np.ndarray, floor: float, parts: list[Box]) -> float:
        """Horizontal distance from `xy` to the nearest obstacle part in the fingers' height range
        (from `floor` up to the hand, HAND_HEIGHT above)."""
        gaps = [_segment_box_distance(xy, xy, box) for box in parts
                if box.hi[2] > floor and box.lo[2] < floor + HAND_HEIGHT]
        return min(gaps) if gaps else np.inf

    def _phase_approach(self, pos):
        above = np.array([*self.grasp[:2], self.hover])
        if np.linalg.norm(pos[:2] - self.grasp[:2]) > 0.015 and pos[2] < self.hover - 0.03:
            # Rise first when low, so the hand never sweeps through objects.
            return self._move(pos, np.array([*pos[:2], self.hover]), OPEN)
        if np.linalg.norm(pos[:2] - self.grasp[:2]) < 0.01:
            self._goto("descend")
        return self._move(pos, above, OPEN)

    def _phase_descend(self, pos):
        goal = self.grasp
        # Near the goal and no longer moving (a fingertip resting on the rim): grasp from here.
        self.stalled = self.stalled + 1 if abs(self.vel[2]) < 0.0005 and pos[2] - goal[2] < 0.03 else 0
        if abs(pos[2] - goal[2]) < 0.008 or self.stalled >= 4 or self.t_phase > 60:
            self._goto("grasp")
        speed = 1.0 if pos[2] - goal[2] > 0.05 else 0.4
        return self._move(pos, goal, OPEN, speed)

    def _phase_grasp(self, pos):
        if self.t_phase >= 12:
            self.held_offset = self._box(self.obj_name).center - pos
            exit_xy = self._exit_from_under()
            self.slide_to = np.array([*(pos[:2] + exit_xy), pos[2] + 0.003])
            self._goto("slide_out" if np.any(exit_xy) else "lift")
        return self._move(pos, self.grasp, CLOSE, 0.3)

    def _exit_from_under(self) -> np.ndarray:
        """The horizontal move [2] that takes the held object out from under every part above it
        (a cabinet's top panel over its half-open drawer), along the axis it overlaps least; zero
        when nothing is above it. Lifting straight up would pull it against that panel."""
        obj = self._box(self.obj_name)
        move = np.zeros(2)
        for part in self._part_boxes():
            overlap = np.minimum(part.hi[:2], obj.hi[:2]) - np.maximum(part.lo[:2], obj.lo[:2])  # [2]
            if np.all(overlap > 0) and part.lo[2] > obj.lo[2] + 0.01:
                axis = int(np.argmin(overlap))
                side = np.sign(obj.center[axis] - part.center[axis]) or 1.0
                step = side * (overlap[axis] + 0.01)
                move[axis] = step if abs(step) > abs(move[axis]) else move[axis]
        return move

    def _phase_slide_out(self, pos):
        if self._slipped(pos):
            return self._regrasp(pos)
        if np.linalg.norm(pos[:2] - self.slide_to[:2]) < 0.01 or self.t_phase > 40:
            self.grasp = np.array([*pos[:2], self.grasp[2]])  # lift from here
            self._goto("lift")
        return self._move(pos, self.slide_to, CLOSE)

    def _slipped(self, pos) -> bool:
        drift = self._box(self.obj_name).center - pos - self.held_offset
        return bool(np.linalg.norm(drift) > SLIP)

    def _phase_lift(self, pos):
        goal = np.array([*self.grasp[:2], self.cruise])
        if self._slipped(pos):
            return self._regrasp(pos)
        if pos[2] > self.cruise - 0.02:
            self._goto("carry")
        return self._move(pos, goal, CLOSE)

    def _regrasp(self, pos):
        self.regrasps += 1
        if self.regrasps > MAX_REGRASPS:
            self._goto("give_up")
        else:
            self._goto("reopen")
        return self._move(pos, pos, OPEN)

    def _phase_reopen(self, pos):
        if self.t_phase >= 8:
            self._goto("plan")
        return self._move(pos, pos + np.array([0, 0, 0.02]), OPEN)

    def _phase_give_up(self, pos):
        return self._move(pos, pos, OPEN)

    def _body_pos(self, name: str) -> np.ndarray:
        return np.array(self.env.sim.data._data.xpos[self._body_id(name)])

    def _place_xy(self, pos) -> np.ndarray:
        """Where the hand goes so that the held object's origin lands on the target's origin (the
        success test compares these two points), from where the object sits in the hand now."""
        return pos[:2] + self._body_pos(self.target_name)[:2] - self._body_pos(self.obj_name)[:2]

    def _phase_carry(self, pos):
        goal = np.array([*self._place_xy(pos), self.cruise])
        if self._slipped(pos):
            return self._regrasp(pos)
        # Lower only once the (swinging) object has stayed over the target for a few steps.
        self.aligned = self.aligned + 1 if np.linalg.norm(pos[:2] - goal[:2]) < 0.01 else 0
        if self.aligned >= 3:
            self.stalled = 0
            self._goto("lower")
        return self._move(pos, goal, CLOSE)

    def _phase_lower(self, pos):
        gap = self._box(self.obj_name).lo[2] - self._box(self.target_name).hi[2]
        xy = self._place_xy(pos)
        if np.linalg.norm(pos[:2] - xy) > 0.015:  # drifted: re-centre before going lower
            self.stalled = 0
            return self._move(pos, np.array([*xy, pos[2]]), CLOSE, 0.5)
        # Resting on something (the hand stops going down) also ends the descent.
        self.stalled = self.stalled + 1 if self.vel[2] > -0.0005 and self.t_phase > 3 else 0
        if gap < 0.01 or self.stalled >= 3 or self.t_phase > 60:
            self._goto("release")
        goal = np.array([*xy, pos[2] - gap + 0.005])
        return self._move(pos, goal, CLOSE, 0.6 if gap > 0.04 else 0.3)

    def _phase_release(self, pos):
        if self.t_phase >= 10:
            self._goto("retreat")
        return self._move(pos, pos, OPEN, 0.2)

    def _phase_retreat(self, pos):
        return self._move(pos, np.array([*pos[:2], self.cruise]), OPEN, 0.5)

