"""The closed-loop runner (vggt_vla/closed_loop.py) on a toy simulator plugged in through the
SIMULATORS table, the way a new simulator is added; in-process and in spawned workers."""

from __future__ import annotations

import numpy as np
import pytest

from vggt_vla import closed_loop
from vggt_vla.closed_loop import ClosedLoopSpec, closed_loop_eval, format_result, policy_view

import toy_sim


@pytest.fixture
def line_sim(monkeypatch):
    monkeypatch.setitem(closed_loop.SIMULATORS, "line", toy_sim.SIMULATOR)


def test_expert_runs_every_episode_with_tables(line_sim):
    result = closed_loop_eval(ClosedLoopSpec(sim="line", episodes_per_task=3), progress=False)
    assert result["episodes"] == 6 and result["successes"] == 6 and result["errors"] == 0
    assert [row["task"] for row in result["per_task"]] == [0, 1]
    assert result["per_task"][1]["instruction"] == "go to 1"
    assert result["breakdown"]["side"]["left"]["episodes"] == 3
    assert result["simulator_versions"] == {"line": "1.0"}
    seeds = [r["seed"] for r in result["episode_records"]]
    assert seeds == [7, 8, 9, 107, 108, 109]
    assert "line overall: 100.0% (6/6)" in format_result(result)
    split = result["time_split"]  # the toy env reports no rendering time: all of it is "simulator"
    assert split["render_s"] == 0 and split["episode_s"] >= split["policy_s"] >= 0
    fractions = sum(split[k] for k in ("policy_fraction", "render_fraction", "simulator_fraction"))
    assert fractions == pytest.approx(1, abs=0.01) if split["episode_s"] > 0 else fractions == 0


class Stubborn:
    """A 'policy' that always pushes right and records what it was shown."""

    def __init__(self):
        self.seen: list[dict] = []
        self.resets = 0
        self.generator = None

    def reset(self):
        self.resets += 1

    def select_action(self, obs):
        self.seen.append(obs)
        return np.array([1, 0, 0, 0, 0, 0, -1], np.float32)


def test_a_policy_fails_where_it_should_and_errors_fail_one_episode(line_sim, monkeypatch):
    actor = Stubborn()
    monkeypatch.setattr(closed_loop, "_actor_for", lambda env: (actor, None))
    result = closed_loop_eval(ClosedLoopSpec(sim="line", episodes_per_task=4, tasks=[0], max_steps=25),
                              progress=False)
    assert actor.resets == 4
    records = result["episode_records"]
    # The goal of task 0 is at -0.25: pushing right reaches it only from the left of it.
    starts = [np.random.default_rng(r["seed"]).uniform(-1, 1) for r in records]
    assert [r["success"] for r in records] == [s < -0.25 for s in starts]
    assert all(r["steps"] == 25 for r in records if not r["success"])

    def broken(obs):
        raise FloatingPointError("non-finite action")

    actor.select_action = broken
    result = closed_loop_eval(ClosedLoopSpec(sim="line", episodes_per_task=2, tasks=[1]), progress=False)
    assert result["errors"] == 2 and result["successes"] == 0
    assert "FloatingPointError" in result["episode_records"][0]["error"]


def test_spawned_workers_give_the_same_records(line_sim, tmp_path):
    spec = dict(sim="line", episodes_per_task=3, seed=40)
    one = closed_loop_eval(ClosedLoopSpec(**spec), progress=False)
    two = closed_loop_eval(ClosedLoopSpec(**spec, workers=2, video_dir=str(tmp_path), videos_per_task=1),
                           progress=False)
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("seconds", "video")} for r in rs]  # noqa: E731
    assert strip(one["episode_records"]) == strip(two["episode_records"])
    videos = sorted(p.name for p in tmp_path.glob("*.mp4"))
    assert len(videos) == 2 and all(p.stat().st_size > 0 for p in tmp_path.glob("*.mp4"))
    assert videos[0].startswith("line_task00_init00_seed40_success")


def test_policy_view_maps_cameras_by_position():
    obs = {"cam_a": 1, "cam_b": 2, "observation.state": 3, "instruction": "x"}
    view = policy_view(obs, ("cam_a", "cam_b"), ["front", "wrist"])
    assert view == {"front": 1, "wrist": 2, "observation.state": 3, "instruction": "x"}
    assert policy_view(obs, ("cam_a", "cam_b"), ["cam_b"]) == {"cam_b": 2, "observation.state": 3, "instruction": "x"}


def test_spec_rejects_what_it_cannot_run(line_sim):
    with pytest.raises(ValueError, match="unknown simulator 'nope'"):
        ClosedLoopSpec(sim="nope")
    with pytest.raises(ValueError, match="cannot ablate"):
        ClosedLoopSpec(sim="line", policy="run", ablate=("state",))
    with pytest.raises(ValueError, match="scripted expert"):
        ClosedLoopSpec(sim="line", ablate=("images",))
    with pytest.raises(ValueError, match="random actions read nothing"):
        ClosedLoopSpec(sim="line", policy="random", ablate=("images",))
    with pytest.raises(ValueError, match="in-memory policy"):
        closed_loop_eval(ClosedLoopSpec(sim="line", workers=2), policy=Stubborn())
    with pytest.raises(ValueError, match="fast_render"):
        closed_loop_eval(ClosedLoopSpec(sim="demo", episodes_per_task=1, fast_render=True), progress=False)
    with pytest.raises(ValueError, match="no fixed initial states.*--seed"):
        closed_loop_eval(ClosedLoopSpec(sim="demo", episodes_per_task=1, first_state=10), progress=False)
    with pytest.raises(ValueError, match="first_state=-1 must be >= 0"):
        ClosedLoopSpec(sim="demo", first_state=-1)


def test_random_actions_are_drawn_per_episode_seed(line_sim):
    """--policy random: uniform actions in [-1, 1], the same for the same episode seed in any process."""
    runs = [closed_loop_eval(ClosedLoopSpec(sim="line", policy="random", episodes_per_task=4, workers=w),
                             progress=False)["episode_records"] for w in (1, 2)]
    outcomes = [[(r["seed"], r["success"], r["steps"]) for r in records] for records in runs]
    assert outcomes[0] == outcomes[1]
    assert len({steps for _, _, steps in outcomes[0]}) > 1 and not any(r["error"] for r in runs[0])
    np.random.seed(3)
    actions = np.stack([closed_loop.RandomActor().select_action({}) for _ in range(200)])  # [200, 7]
    assert actions.shape == (200, 7) and actions.min() >= -1 and actions.max() <= 1 and actions.std() > 0.5


def test_demo_expert_through_the_runner():
    result = closed_loop_eval(ClosedLoopSpec(sim="demo", episodes_per_task=20), progress=False)
    assert result["successes"] >= 19 and result["episode_records"][0]["seed"] == 100_000
    assert set(result["breakdown"]) == {"instruction", "target colour"}
