"""Exchanged layouts (vggt_vla/sim/layout_exchange.py): which objects may trade places, that they do
in the simulator, and that a generation records and checks the setting. Needs the simulator."""

import json

import numpy as np
import pytest

from conftest import needs_libero
from conftest import run_script as run

pytestmark = needs_libero


@pytest.fixture(scope="module")
def env():
    """libero_spatial task 5: the bowl on the ramekin goes onto the plate; the other bowl rests on the
    cookie box."""
    from vggt_vla.sim.libero import LiberoEnv

    e = LiberoEnv("libero_spatial", 5, cameras=False)
    yield e
    e.close()


def _xy(env, obj: str) -> np.ndarray:
    return env.sim.data.get_joint_qpos(f"{obj}_joint0")[:2].copy()


def test_the_target_trades_places_only_with_objects_that_do_not_carry_the_picked_one(env):
    from vggt_vla.sim.layout_exchange import exchange_candidates

    # The ramekin carries the bowl to pick; the other bowl stands on the cookie box, not on the
    # table: only the cookie box (with that bowl on it) may trade places with the plate.
    assert exchange_candidates(env._env.env) == ("plate_1", ["cookies_1"])


def test_an_exchanged_scene_has_the_plate_where_the_cookie_box_was(env):
    objects = ("plate_1", "cookies_1", "akita_black_bowl_2", "akita_black_bowl_1", "glazed_rim_porcelain_ramekin_1")
    env.reset(None, seed=1_000_123)
    before = {o: _xy(env, o) for o in objects}
    env.reset(None, seed=1_000_123, exchange_layout=True)
    after = {o: _xy(env, o) for o in objects}
    assert env.exchanged == ("plate_1", "cookies_1")
    assert np.linalg.norm(before["plate_1"] - before["cookies_1"]) > 0.10  # a real move, not jitter
    assert np.linalg.norm(after["plate_1"] - before["cookies_1"]) < 0.015
    assert np.linalg.norm(after["cookies_1"] - before["plate_1"]) < 0.015
    assert np.linalg.norm(after["akita_black_bowl_2"] - after["cookies_1"]) < 0.03  # carried along on the box
    for still in ("akita_black_bowl_1", "glazed_rim_porcelain_ramekin_1"):
        assert np.linalg.norm(after[still] - before[still]) < 0.01
    first = env.sim_state()
    env.reset(None, seed=1_000_123, exchange_layout=True)
    assert np.array_equal(env.sim_state(), first)  # the same seed, the same scene
    env.reset(None, seed=1_000_123)
    assert env.exchanged is None and np.allclose(_xy(env, "plate_1"), before["plate_1"])


def test_the_choice_of_scenes_is_a_fixed_fraction_of_seeds():
    from vggt_vla.sim.layout_exchange import chosen_for_exchange

    seeds = range(1_000_000, 1_000_400)
    assert not any(chosen_for_exchange(s, 0.0) for s in seeds) and all(chosen_for_exchange(s, 1.0) for s in seeds)
    half = [chosen_for_exchange(s, 0.5) for s in seeds]
    assert 0.4 < np.mean(half) < 0.6 and half == [chosen_for_exchange(s, 0.5) for s in seeds]


def test_a_generation_records_its_exchanged_scenes_and_refuses_another_fraction(tmp_path):
    out = tmp_path / "ds"
    args = ["scripts/generate_libero_demos.py", "--tasks", "5", "--episodes_per_task", "1", "--image_size", "32",
            "--fast_render", "--out", str(out)]
    result = run(*args, "--layout_exchange", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "layouts exchanged in 1 scenes; the expert solved 1 of them" in result.stdout
    row = json.loads((out / "expert_success.json").read_text())["per_task"][0]
    assert row["exchanged_episodes"] == row["exchanged_successes"] == 1
    with np.load(next((out / "episodes").glob("*.npz"))) as f:
        assert str(f["exchanged_objects"]) == "plate_1<->cookies_1"
    result = run(*args, "--layout_exchange", "0.5")
    assert result.returncode == 2 and "layout_exchange: 1.0 there, 0.5 asked" in result.stderr
    result = run(*args[:-2], "--out", str(tmp_path / "other"), "--layout_exchange", "1.5")
    assert result.returncode == 2 and "fraction of the scenes" in result.stderr
