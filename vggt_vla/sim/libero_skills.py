"""Skills of the LIBERO scripted expert other than pick-and-place: push an object over the table,
drag a plate by its rim, turn a knob, pull a drawer open. vggt_vla/sim/libero_expert.py chooses
them from the task's goal and runs them (before its pick-and-place phases, or alone); each reads
the scene through the expert and moves the hand with its PD control.

A skill is stepped with `act(pos)` (pos: the grip point, world [3]) and returns the 7-D action
(its rotation part is filled in by the expert from `expert.hold_rot`, which a skill may turn), or
None once it is finished. `phase` names what it is doing (episode traces).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:  # the expert imports this module
    from .libero_expert import LiberoExpert

OPEN, CLOSE = -1.0, 1.0
# The Panda hand seen from above, in the hand's frame (metres from the grip point): the palm is a
# block HAND_HALF_LENGTH either side along the finger axis, HAND_HALF_WIDTH across it, from
# PALM_ABOVE to HAND_HEIGHT above the grip point; an open finger spans FINGER_INNER..FINGER_OUTER
# along the axis and reaches FINGER_BELOW below the grip point.
HAND_HALF_LENGTH, HAND_HALF_WIDTH, PALM_ABOVE, HAND_HEIGHT = 0.105, 0.04, 0.03, 0.12
FINGER_INNER, FINGER_OUTER, FINGER_HALF_WIDTH, FINGER_BELOW = 0.03, 0.068, 0.013, 0.013
HOVER = 0.06          # the hand moves this far (m) above what it is about to touch
PUSH_GAP = 0.015      # the fingertips start this far (m) behind the pushed object's edge ...
PUSH_INSIDE = 0.03    # ... or this far inside its front edge (a rim, pushed from the inside)
PUSH_LATERAL = 0.02   # the fingertips this far (m) off the line through the object to its goal: start over
PUSH_LOST = 0.05      # ... or this far ahead of where they push from (the object stayed behind)
FINGERTIP_CLEAR = 0.0    # closed fingertips this far (m) above the table when pushing
DRAG_FINGERTIP_CLEAR = 0.004  # open fingertips this far (m) above the table to pinch a plate's rim
DRAG_INSET = 0.01     # the grip point this far (m) inside the rim point: the inner finger lands on the
                      # plate's floor, not on the rim's slope, even when the arm lags outwards
DRAG_DOWN_REACHED = 0.006  # the descent ends this close (m) above the grip height ...
DRAG_DOWN_RESTING = 0.015  # ... or after DRAG_DOWN_STILL still steps this close (a finger on the floor)
DRAG_DOWN_STILL = 3
DRAG_DOWN_STEPS = 40  # ... or after this many steps
DRAG_SPEED = 0.5      # of a drag, as a fraction of the largest action; halved over its last 5 cm
DRAG_SLIP = 0.02      # the dragged plate's origin this much nearer or further (m) from the hand: it slipped
DRAG_RETRIES = 3      # pinches taken again after a slip; after the last, the drag goes on as it is
COMFORT_REACH = 0.74  # horizontal distance (m) from the robot base beyond which grasps get awkward
KNOB_OVERTURN = 0.25  # turn a knob this far (rad) past the angle that counts as on
HANDLE_DEPTH = 0.016  # a drawer's handle: its parts within this (m) of its outermost point
DRAWER_APPROACH = 0.07  # the hand lines up this far (m) in front of the handle before coming in
DRAWER_OVERPULL = 0.015  # pull a drawer this far (m) past the position that counts as open


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class Push:
    """Slide `obj` over the table until its origin is within `tolerance` of `goal` (world xy):
    the closed fingertips come down at its back (the side away from the goal), low over the table,
    and push it along the line from its origin to the goal, re-aimed every step; a push that has
    drifted off that line starts over from above. The expert pushes a bowl out of a drawer's way
    with it (a plate it drags instead: DragByRim).

    The fingertips come down just behind its back edge, or inside it near its front edge (pushing
    a rim from the inside), and the palm (21 cm long) lies across the push or along it: the first
    of these whose hand clears everything else from the start of the push to its end."""

    name = "push"

    def __init__(self, expert: "LiberoExpert", obj: str, goal: np.ndarray, tolerance: float, speed: float = 0.5):
        self.x, self.obj, self.goal, self.tolerance = expert, obj, np.asarray(goal, dtype=np.float64)[:2], tolerance
        self.speed = speed  # of the push, halved over its last 5 cm
        self.phase, self.t = "rise", 0
        self.behind, self.across = True, True

    def _goto(self, phase: str) -> None:
        self.phase, self.t = phase, 0

    def _geometry(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(object origin xy, unit direction to the goal, fingertip start point xy, push height)."""
        origin = self.x._body_pos(self.obj)[:2]
        to_goal = self.goal - origin
        d = to_goal / max(np.linalg.norm(to_goal), 1e-9)
        corners = self.x._corners(self.obj)
        along = corners[:, :2] @ d - origin @ d
        height = float(corners[:, 2].min()) + FINGER_BELOW + FINGERTIP_CLEAR
        offset = along.min() - PUSH_GAP if self.behind else along.max() - PUSH_INSIDE
        return origin, d, origin + d * offset, height

    def _choose_start(self) -> None:
        """Where the fingertips push from (self.behind: behind the back edge, or inside the front
        one) and which way the palm lies (self.across), from the scene now."""
        parts = self.x._part_boxes()
        best = None
        for behind, across in ((True, True), (True, False), (False, True), (False, False)):
            self.behind = behind
            origin, d, start, height = self._geometry()
            u = np.array([-d[1], d[0]]) if across else d  # the finger axis
            length = float(np.linalg.norm(self.goal - origin))
            hits = sum(self.x._hand_hits(np.array([*(start + d * s), height]), u, parts, fingers=False)
                       for s in np.linspace(0.0, length, 5))
            if best is None or hits < best[0]:
                best = (hits, behind, across)
            if hits == 0:
                break
        _, self.behind, self.across = best

    def act(self, pos: np.ndarray) -> Optional[np.ndarray]:
        self.t += 1
        origin, d, start, height = self._geometry()
        done = np.linalg.norm(self.goal - origin) < self.tolerance
        hover = float(self.x._box(self.obj).hi[2] + HOVER)
        if self.phase == "rise":  # straight up, then over the start point
            if done:
                return None if pos[2] > hover - 0.01 else self.x._move(pos, np.array([*pos[:2], hover]), CLOSE)
            if pos[2] > hover - 0.02:
                self._choose_start()
                fingers = np.array([-d[1], d[0]]) if self.across else d
                self.x.hold_rot = _yaw_matrix(self.x._hand_yaw(fingers)) @ self.x.start_rot
                self._goto("over")
            return self.x._move(pos, np.array([*pos[:2], hover]), CLOSE)
        if self.phase == "over":
            if np.linalg.norm(pos[:2] - start) < 0.01:
                self._goto("down")
            return self.x._move(pos, np.array([*start, hover]), CLOSE)
        if self.phase == "down":
            if pos[2] - height < 0.006 or (self.t > 5 and abs(self.x.vel[2]) < 0.0005):
                self._goto("push")
            return self.x._move(pos, np.array([*start, height]), CLOSE, 0.5)
        # push: keep advancing along the line from the object to its goal, a step ahead of the hand
        normal = np.array([-d[1], d[0]])
        lost = (pos[:2] - start) @ d > PUSH_LOST  # ran ahead: the object did not come along
        if done or lost or abs((pos[:2] - origin) @ normal) > PUSH_LATERAL:
            self._goto("rise")
            return self.x._move(pos, pos + np.array([0.0, 0.0, 0.05]), CLOSE)
        remaining = float(np.linalg.norm(self.goal - origin))
        ahead = start + d * ((pos[:2] - start) @ d + min(0.03, remaining))
        return self.x._move(pos, np.array([*ahead, height]), CLOSE, self.speed if remaining > 0.05 else self.speed / 2)


class DragByRim:
    """Slide a plate over the table until its origin is within `tolerance` of `goal` (world xy):
    pinch its rim, the fingers closing along the line from its centre out to the rim point, then
    drag it there and let go. For objects too wide to grasp across and too low to lift by the rim;
    `obj` is the expert's object (the rim points are the expert's, `LiberoExpert._rim_points`).

    The fingertips come down just above the table: the inner finger lands on the plate's floor, the
    outer one beside it, and closing pinches the sloping rim between them. Of the rim points, the
    one whose open hand comes down clear of everything and whose palm stays clear along the drag,
    then one behind the plate (the hand pushing it ahead), within easy reach, turning the hand
    least (`_grip_cost`). Pushing a plate's rim from the inside instead rides up its slope
    (libero_goal task 5, where the cabinet stands 2-3 cm behind the plate:
    docs/experiments/2026-12-03-libero-object-goal.md). A plate that slips out of the fingers (its
    origin comes DRAG_SLIP nearer to or further from the hand) is let go and pinched again,
    preferring another rim point, DRAG_RETRIES times; after that the drag goes on as it is."""

    name = "drag"

    def __init__(self, expert: "LiberoExpert", obj: str, goal: np.ndarray, tolerance: float):
        self.x, self.obj, self.goal, self.tolerance = expert, obj, np.asarray(goal, dtype=np.float64)[:2], tolerance
        self._goto("rise")
        self.grip = np.zeros(3)  # where the grip point pinches the rim (world), chosen in _choose_grip
        self.u = np.zeros(3)     # the rim's outward direction there: the fingers close along it
        self.held_at = 0.0       # the plate's origin this far (m) from the hand once pinched
        self.tries = 0
        self.slipped_from: list[np.ndarray] = []  # rim directions [3] whose pinch slipped

    def _goto(self, phase: str) -> None:
        self.phase, self.t, self.stalled = phase, 0, 0

    def _remaining(self) -> np.ndarray:
        return self.goal - self.x._body_pos(self.obj)[:2]  # [2]

    def _choose_grip(self) -> None:
        """Set self.grip and self.u to the cheapest rim point, its fingertips DRAG_FINGERTIP_CLEAR
        above the table, and turn the hand (self.x.hold_rot) so the fingers close along self.u."""
        parts = self.x._part_boxes()
        plate_bottom = float(self.x._box(self.obj).lo[2])
        remaining = self._remaining()
        best = None
        for u, rim in self.x._rim_points():
            grip = np.array([*(rim[:2] - DRAG_INSET * u[:2]), plate_bottom + FINGER_BELOW + DRAG_FINGERTIP_CLEAR])
            cost = self._grip_cost(grip, u, remaining, parts)
            if best is None or cost < best[0]:
                best = (cost, grip, u)
        _, self.grip, self.u = best
        self.x.hold_rot = _yaw_matrix(self.x._hand_yaw(self.u[:2])) @ self.x.start_rot

    def _grip_cost(self, grip: np.ndarray, u: np.ndarray, remaining: np.ndarray, parts: list) -> float:
        """The cost of pinching at `grip` [3] with the fingers along `u` [3], the plate `remaining`
        [2] from its goal. In order of weight: the open hand stopped short of the grip point (up to
        1.0) or the palm meeting something along the drag (up to 0.5); a slip there before (1.0);
        the pinch facing the goal (up to 0.1); reach past COMFORT_REACH (0.02 a cm); the hand's turn
        (0.01 a radian)."""
        down = self.x._hand_hits(grip, u[:2], parts)
        along = max(self.x._hand_hits(grip + np.array([*remaining * s, 0.0]), u[:2], parts, fingers=False)
                    for s in np.linspace(0.0, 1.0, 5))
        # Pinched behind its centre (the hand pushing it ahead), the plate's pinched, lifted side
        # trails and its leading edge stays on the table: it shoves small things (a cream cheese
        # pack) along instead of riding up onto them and slipping out of the fingers.
        facing_goal = float(u[:2] @ remaining) / max(float(np.linalg.norm(remaining)), 1e-9)
        # Low over the table, the arm barely reaches past COMFORT_REACH: the hand lags there.
        base = np.array(self.x._inner.robots[0].base_pos)[:2]
        reach = max(np.linalg.norm(grip[:2] - base), np.linalg.norm(grip[:2] + remaining - base))
        slipped_here = sum(float(u @ v) > 0.9 for v in self.slipped_from)
        cost = 10.0 * min(down, 0.1) + 5.0 * min(along, 0.1) + 0.05 * (1.0 + facing_goal) + 0.01 * abs(
            self.x._hand_yaw(u[:2]))
        return cost + 2.0 * max(0.0, float(reach) - COMFORT_REACH) + slipped_here

    def act(self, pos: np.ndarray) -> Optional[np.ndarray]:
        self.t += 1
        remaining = self._remaining()
        done = np.linalg.norm(remaining) < self.tolerance
        if self.phase == "rise":  # straight up, open, then over the rim point
            hover = float(self.x._box(self.obj).hi[2] + HOVER)
            if pos[2] > hover - 0.02:
                if done:
                    return None
                self._choose_grip()
                self._goto("over")
            return self.x._move(pos, np.array([*pos[:2], hover]), OPEN)
        if self.phase == "over":
            hover = float(self.x._box(self.obj).hi[2] + HOVER)
            if np.linalg.norm(pos[:2] - self.grip[:2]) < 0.01:
                self._goto("down")
            return self.x._move(pos, np.array([*self.grip[:2], hover]), OPEN)
        if self.phase == "down":  # until there, or resting on the plate's floor just above it
            above = pos[2] - self.grip[2]
            self.stalled = self.stalled + 1 if abs(self.x.vel[2]) < 0.0005 and above < DRAG_DOWN_RESTING else 0
            if above < DRAG_DOWN_REACHED or self.stalled >= DRAG_DOWN_STILL or self.t > DRAG_DOWN_STEPS:
                self._goto("pinch")
            return self.x._move(pos, self.grip, OPEN, 0.5)
        if self.phase == "pinch":  # pressing on down: fingertips any higher close over the rim
            if self.t >= 10:
                self.held_at = float(np.linalg.norm(self.x._body_pos(self.obj)[:2] - pos[:2]))
                self._goto("drag")
            return self.x._move(pos, self.grip, CLOSE, 0.3)
        if self.phase == "drag":
            # Pushed ahead, the plate may veer about the pinch, but its origin stays as far from
            # the hand unless it slips out of the fingers.
            slipped = abs(np.linalg.norm(self.x._body_pos(self.obj)[:2] - pos[:2]) - self.held_at) > DRAG_SLIP
            if done:
                self._goto("release")
            elif slipped and self.tries < DRAG_RETRIES:
                self.tries += 1
                self.slipped_from.append(self.u)
                self._goto("release")
            else:
                distance = float(np.linalg.norm(remaining))
                ahead = pos[:2] + remaining / max(distance, 1e-9) * min(0.03, distance)
                speed = DRAG_SPEED if distance > 0.05 else DRAG_SPEED / 2
                return self.x._move(pos, np.array([*ahead, self.grip[2]]), CLOSE, speed)
        # release: open where it is, then rise (and pinch again if it is not there yet)
        if self.t >= 6:
            self._goto("rise")
        return self.x._move(pos, pos, OPEN, 0.2)


class TurnKnob:
    """Turn the knob on `joint` (a hinge about the vertical, e.g. a stove's) until its angle
    passes `angle` by KNOB_OVERTURN: grasp its fin from above, the fingers closing across its
    narrowest side, on the hinge's axis, then turn the hand about the vertical."""

    name = "turn"

    def __init__(self, expert: "LiberoExpert", joint: str, angle: float):
        self.x, self.joint, self.angle = expert, joint, angle
        self.phase, self.t = "plan", 0
        self.turned = 0.0

    def _goto(self, phase: str) -> None:
        self.phase, self.t = phase, 0

    def _plan(self) -> None:
        model, data = self.x.env.sim.model._model, self.x.env.sim.data._data
        j = model.joint(self.joint).id
        axis = np.array(data.xaxis[j])
        if abs(axis[2]) < 0.9:
            raise NotImplementedError(f"knob joint {self.joint!r} does not turn about the vertical (axis {axis})")
        self.sign = float(np.sign(axis[2]))  # a positive hand turn about +z turns it this way
        corners = self.x._corners_of_body(int(model.jnt_bodyid[j]))
        top = corners[:, 2].max()
        fin = corners[corners[:, 2] > top - 0.02][:, :2]  # what sticks up: the part to hold
        best = None
        for yaw in np.deg2rad(np.arange(-90, 90, 10)):
            u = _yaw_matrix(yaw)[:2, :2] @ self.x._finger_axis()[:2]
            span = float(np.ptp(fin @ u))
            if best is None or span < best[0] - 1e-4:
                best = (span, float(yaw))
        self.yaw = best[1]
        self.grip = np.array([*data.xanchor[j][:2], top - 0.02])
        self.x.hold_rot = _yaw_matrix(self.yaw) @ self.x.start_rot

    def _qpos(self) -> float:
        model, data = self.x.env.sim.model._model, self.x.env.sim.data._data
        return float(data.qpos[model.jnt_qposadr[model.joint(self.joint).id]])

    def act(self, pos: np.ndarray) -> Optional[np.ndarray]:
        self.t += 1
        if self.phase == "plan":
            self._plan()
            self._goto("over")
        hover = self.grip[2] + HOVER
        if self.phase == "over":
            if pos[2] < hover - 0.03 and np.linalg.norm(pos[:2] - self.grip[:2]) > 0.015:
                return self.x._move(pos, np.array([*pos[:2], hover]), OPEN)
            if np.linalg.norm(pos[:2] - self.grip[:2]) < 0.008:
                self._goto("down")
            return self.x._move(pos, np.array([*self.grip[:2], hover]), OPEN)
        if self.phase == "down":
            if abs(pos[2] - self.grip[2]) < 0.006 or self.t > 40:
                self._goto("grasp")
            return self.x._move(pos, self.grip, OPEN, 0.5)
        if self.phase == "grasp":
            if self.t >= 12:
                self._goto("turn")
            return self.x._move(pos, self.grip, CLOSE, 0.3)
        if self.phase == "turn":
            if self._qpos() >= self.angle + KNOB_OVERTURN or self.t > 60:
                self._goto("release")
            self.turned = min(self.turned + 0.08, np.pi / 2)
            self.x.hold_rot = _yaw_matrix(self.yaw + self.sign * self.turned) @ self.x.start_rot
            return self.x._move(pos, self.grip, CLOSE, 0.3)
        if self.phase == "release":
            if self.t >= 8:
                self._goto("up")
            return self.x._move(pos, pos, OPEN, 0.2)
        if pos[2] > hover - 0.01:
            return None
        return self.x._move(pos, np.array([*pos[:2], hover]), OPEN, 0.5)


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix about unit vector `axis` by `angle` (Rodrigues)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * k @ k


class PullDrawer:
    """Pull the drawer on slide joint `joint` open until its position passes `open_at` (the
    fixture's "open" threshold, e.g. -0.14 m) by DRAWER_OVERPULL: the hand turns to point
    horizontally at the drawer's front, its fingers closing vertically, comes in at the height
    of the handle (what sticks out furthest), closes on its bar and pulls it straight out. A
    drawer's handle cannot be taken from above: the bar sits 16 mm off the front, a fingertip is
    14 mm thick, and the drawer above hides it. Then it lets go, backs off and turns the hand
    back to pointing down."""

    name = "pull"

    def __init__(self, expert: "LiberoExpert", joint: str, open_at: float):
        self.x, self.joint, self.open_at = expert, joint, open_at
        self.sign = float(np.sign(open_at)) or 1.0  # opening moves the joint this way
        self.phase, self.t = "plan", 0

    def _goto(self, phase: str) -> None:
        self.phase, self.t = phase, 0

    def _qpos(self) -> float:
        model, data = self.x.env.sim.model._model, self.x.env.sim.data._data
        return float(data.qpos[model.jnt_qposadr[model.joint(self.joint).id]])

    def is_open(self) -> bool:
        return (self._qpos() - self.open_at) * self.sign > 0

    def _out(self) -> np.ndarray:
        """Unit vector [3]: the way the drawer's front moves when opening."""
        model, data = self.x.env.sim.model._model, self.x.env.sim.data._data
        out = np.array(data.xaxis[model.joint(self.joint).id]) * self.sign
        if abs(out[2]) > 0.1:
            raise NotImplementedError(f"drawer joint {self.joint!r} does not slide horizontally (axis {out})")
        return out / np.linalg.norm(out)

    def travel(self) -> np.ndarray:
        """How far the drawer will move [3] (world), from where it is now to pulled open."""
        return self._out() * (abs(self.open_at - self._qpos()) + DRAWER_OVERPULL)

    def drawer_body(self) -> int:
        model = self.x.env.sim.model._model
        return int(model.jnt_bodyid[model.joint(self.joint).id])

    def _plan(self, pos: np.ndarray) -> None:
        self.out = self._out()
        corners = self.x._corners_of_body(self.drawer_body())
        reach = corners @ self.out
        handle = corners[reach > reach.max() - HANDLE_DEPTH]  # the bar: the outermost part
        self.grip = (handle.min(0) + handle.max(0)) / 2
        start = self.x.start_rot
        down = np.array([0.0, 0.0, -1.0])
        tilt = np.cross(down, -self.out)
        tilt /= np.linalg.norm(tilt)
        # fingers along the pull first (a turn about the vertical), then tip the hand forward by
        # 90 degrees about the horizontal across the pull: the fingers then close vertically (the
        # only way across the bar: it is 9 cm long), and the palm reaches 10 cm below the handle,
        # where it may press on a plate standing there
        self.rot = _axis_rotation(tilt, np.pi / 2) @ _yaw_matrix(self.x._hand_yaw(self.out[:2])) @ start
        self.distance = float(np.linalg.norm(self.travel()))
        # The turned hand's palm hangs HAND_HALF_LENGTH below the grip point: it goes straight up
        # until that clears what lies under its way to the handle, then over at once, coming down
        # in front of the handle from above only where the palm would not clear (a plate below a
        # low drawer).
        from .libero_expert import _segment_box_distance  # that module imports this one

        front = self.grip + self.out * DRAWER_APPROACH
        tops = [part.hi[2] for part in self.x._part_boxes()
                if _segment_box_distance(pos[:2], front[:2], part) < HAND_HALF_WIDTH + 0.02]
        self.clear_z = max(tops, default=-np.inf) + HAND_HALF_LENGTH + 0.01

    def _turned(self, rot: np.ndarray) -> bool:
        _, current = self.x._eef()
        r = rot @ current.T
        return np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)) < 0.1

    def act(self, pos: np.ndarray) -> Optional[np.ndarray]:
        self.t += 1
        if self.phase == "plan":
            self._plan(pos)
            self._goto("align")
        front = self.grip + self.out * DRAWER_APPROACH
        above = np.array([*front[:2], max(front[2], self.clear_z)])
        # Align: above the point in front of the handle, the hand turned, the fingers open (half
        # closed, they wedge against the bar of libero_goal task 3's top drawer in state 2).
        if self.phase == "align":
            self.x.hold_rot = self.rot
            if pos[2] < min(self.clear_z, above[2] - 0.02) and np.linalg.norm(pos[:2] - front[:2]) > 0.02:
                return self.x._move(pos, np.array([*pos[:2], above[2]]), OPEN)  # up first, clear of all
            if np.linalg.norm(pos - above) < 0.02 and self._turned(self.rot) or self.t > 60:
                self._goto("lower")
            return self.x._move(pos, above, OPEN)
        if self.phase == "lower":
            if np.linalg.norm(pos - front) < 0.012 or self.t > 40:
                self._goto("in")
            return self.x._move(pos, front, 0.0, 1.0)
        if self.phase == "in":
            if np.linalg.norm(pos - self.grip) < 0.006 or self.t > 40:
                self._goto("grasp")
            return self.x._move(pos, self.grip, 0.0, 0.8)
        if self.phase == "grasp":
            if self.t >= 8:
                self.pull_from = pos.copy()
                self._goto("pull")
            return self.x._move(pos, self.grip, CLOSE, 0.3)
        if self.phase == "pull":
            if self.is_open() and (self._qpos() - self.open_at) * self.sign > DRAWER_OVERPULL / 2 or self.t > 80:
                self._goto("release")
            return self.x._move(pos, self.pull_from + self.out * self.distance, CLOSE, 1.0)
        if self.phase == "release":
            if self.t >= 6:
                self.release_at = pos.copy()
                self.back_to = pos + self.out * 0.04 + np.array([0.0, 0.0, 0.06])
                self._goto("back")
            return self.x._move(pos, pos, OPEN, 0.2)
        # back and up at once; the hand turns back to pointing down once its fingers are clear of the handle
        if (pos - self.release_at) @ self.out > 0.02:
            self.x.hold_rot = self.x.start_rot
        if np.linalg.norm(pos - self.back_to) < 0.015 and self._turned(self.x.start_rot) or self.t > 30:
            return None
        return self.x._move(pos, self.back_to, OPEN)
