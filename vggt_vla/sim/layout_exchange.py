"""Exchange where two objects stand in a LIBERO scene: layouts that LIBERO's sampler never draws.

LIBERO places each object in its own 2 cm region, so every scene of a task, the benchmark's and
the sampled demonstration scenes alike, has the same layout to within a centimetre or two, and a
policy can learn where the plate *is* instead of looking for it. LIBERO-PRO's swap suites exchange
the placement regions of the goal's target (the plate) and one other object, and such a policy
then carries the bowl to where the plate used to be (docs/experiments/2026-12-03-geometry.md).

`exchange_layout` does the same kind of thing to a scene that has just been reset: it exchanges the
horizontal positions of the goal's target object and of another movable object, each with
whatever rests on it, keeping each object's height and orientation; the simulator's warm-up steps
then let them settle. The partner is drawn from the objects that stand on a table region and do
not carry the object to be picked. Tasks without such a pair (the target is a fixture or a table
region, as in libero_goal's stove or table-front tasks) are left as they are.

To add another kind of layout change, write it here next to `exchange_layout` and call it where
LiberoEnv.reset calls this one.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

FREE_JOINT_QPOS = 7  # x, y, z, quaternion
# Seeds the per-episode choice apart from everything else drawn from an episode's seed.
CHOICE_STREAM = 11


def chosen_for_exchange(seed: int, fraction: float) -> bool:
    """Whether the scene of the episode with this seed gets its layout exchanged: a fixed draw per
    seed, so a resumed or repeated generation makes the same choice."""
    return fraction > 0 and bool(np.random.default_rng([seed, CHOICE_STREAM]).random() < fraction)


def _goal_objects(inner) -> tuple[Optional[str], Optional[str]]:
    """(object to pick, object it goes on or into) from the task's one goal, or Nones."""
    goals = inner.parsed_problem["goal_state"]
    if len(goals) != 1 or len(goals[0]) != 3 or goals[0][0].lower() not in ("on", "in"):
        return None, None
    _, picked, target = (g.lower() for g in goals[0])
    site = inner.object_sites_dict.get(target)
    if site is not None:  # a region: its object, if it belongs to one (a basket's), else the table
        target = site.parent_name
    return picked, target if target in inner.objects_dict else None


def _supports(inner) -> dict[str, str]:
    """{object: what it stands on} from the task's initial state: an object name or a region."""
    return {s[1].lower(): s[2].lower() for s in inner.parsed_problem["initial_state"]
            if len(s) == 3 and s[0].lower() == "on"}


def _stack(obj: str, supports: dict[str, str]) -> list[str]:
    """`obj` and everything resting on it, directly or through others."""
    out, todo = [obj], [obj]
    while todo:
        below = todo.pop()
        above = [o for o, s in supports.items() if s == below and o not in out]
        out += above
        todo += above
    return out


def exchange_candidates(inner) -> tuple[Optional[str], list[str]]:
    """(the goal's target object, the movable objects it may exchange places with), or (None, [])."""
    picked, target = _goal_objects(inner)
    if target is None:
        return None, []
    supports = _supports(inner)

    def on_table(o: str) -> bool:
        region = supports.get(o)
        site = inner.object_sites_dict.get(region) if region else None
        return site is not None and site.parent_name is None  # a table region belongs to no object

    if not on_table(target) or picked in _stack(target, supports):
        return None, []
    partners = [o for o in inner.objects_dict if o != target and on_table(o) and picked not in _stack(o, supports)]
    return target, partners


def _free_joint(inner, obj: str) -> Optional[str]:
    joints = inner.objects_dict[obj].joints
    return joints[0] if joints else None


def exchange_layout(env, rng: np.random.Generator) -> Optional[tuple[str, str]]:
    """Exchange the x-y positions of the goal's target and a partner drawn with `rng` (each with
    what rests on it) in `env`'s current scene (a LiberoEnv, just reset). Returns (target, partner),
    or None where the task has no such pair. The caller steps the simulator to let them settle."""
    inner = env._env.env
    target, partners = exchange_candidates(inner)
    partners = [p for p in partners if _free_joint(inner, p)]
    if target is None or not partners or _free_joint(inner, target) is None:
        return None
    partner = partners[int(rng.integers(len(partners)))]
    supports = _supports(inner)
    sim = env.sim
    xy = {o: sim.data.get_joint_qpos(_free_joint(inner, o))[:2].copy() for o in (target, partner)}
    for obj, other in ((target, partner), (partner, target)):
        shift = xy[other] - xy[obj]  # [2]
        for member in _stack(obj, supports):
            joint = _free_joint(inner, member)
            if joint is None:
                continue
            qpos = sim.data.get_joint_qpos(joint).copy()  # [7]
            if len(qpos) != FREE_JOINT_QPOS:
                continue
            qpos[:2] += shift
            sim.data.set_joint_qpos(joint, qpos)
    sim.forward()
    return target, partner
