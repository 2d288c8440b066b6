"""scripts/results_table.py: the experiment logs' tables, built from eval.py's own JSON."""

import json

from conftest import run_script


def _score(run_dir, policy):
    run_dir.mkdir()
    out = run_script("scripts/eval.py", "--sim", "demo", "--policy", policy, "--episodes_per_task", "4",
                     "--json", run_dir / "eval_demo.json")
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads((run_dir / "eval_demo.json").read_text())


def test_table_shows_each_runs_success_and_interval_from_its_json(tmp_path):
    expert, chance = _score(tmp_path / "expert", "scripted"), _score(tmp_path / "chance", "random")
    (tmp_path / "expert" / "eval_offline.json").write_text("{}")  # offline results are not closed loop
    out = run_script("scripts/results_table.py", tmp_path / "expert", tmp_path / "chance", "--per_task")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "| run | demo |"
    for line, result in zip(lines[2:4], (expert, chance)):
        low, high = result["ci95"]
        assert f"({result['successes']}/{result['episodes']}) [{100 * low:.1f}, {100 * high:.1f}]" in line
    assert expert["successes"] != chance["successes"]  # the two rows are told apart
    task_rows = [line for line in lines if line.startswith("| 0 |")]
    assert len(task_rows) == 1 and task_rows[0].endswith(
        f"| {expert['per_task'][0]['successes']}/4 | {chance['per_task'][0]['successes']}/4 |")


def test_a_run_without_results_or_with_a_broken_one_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    out = run_script("scripts/results_table.py", tmp_path / "empty")
    assert out.returncode == 2 and "no closed-loop eval_*.json" in out.stderr and "eval.py --checkpoint" in out.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "eval_libero_spatial.json").write_text('{"sim": "libero", "succ')
    out = run_script("scripts/results_table.py", tmp_path / "broken")
    assert out.returncode == 2 and "eval_libero_spatial.json is not valid JSON" in out.stderr
    (tmp_path / "broken" / "eval_libero_spatial.json").write_text('{"sim": "libero"}')
    out = run_script("scripts/results_table.py", tmp_path / "broken")
    assert out.returncode == 2 and "missing ['success_rate'" in out.stderr
    out = run_script("scripts/results_table.py", tmp_path / "nowhere")
    assert out.returncode == 2 and "is not a run directory" in out.stderr


def test_a_task_subset_and_new_scenes_get_columns_of_their_own(tmp_path):
    """eval.py --tasks and --scenes results sit beside the whole suite's result in one run directory
    (eval_libero_spatial_sampled_scenes.json, or a --json name): each is its own column, not a clash."""
    expert = _score(tmp_path / "expert", "scripted")
    subset = dict(expert, settings=dict(expert["settings"], tasks=[0]))
    scenes = dict(expert, settings=dict(expert["settings"], tasks=[0], scenes="sampled"))
    (tmp_path / "expert" / "eval_demo_task0.json").write_text(json.dumps(subset))
    (tmp_path / "expert" / "eval_demo_sampled_scenes.json").write_text(json.dumps(scenes))
    out = run_script("scripts/results_table.py", tmp_path / "expert")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "| run | demo | demo, task 0, sampled scenes | demo, task 0 |"
