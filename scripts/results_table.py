#!/usr/bin/env python
"""Closed-loop results of several runs side by side, as Markdown tables for the experiment logs.

    python scripts/results_table.py logs/libero_cpu_geo_baseline logs/libero_cpu_geometry [--per_task]

Reads each run directory's eval_*.json (written by eval.py and quick_start.sh; offline and probe
results are skipped) and prints one row per run and one column per condition (suite, camera shift,
hidden inputs): success, successes/episodes and the 95 % Wilson interval. --per_task adds, per
condition, a table of each task's successes. Every figure comes from the JSON files, so a table in
a log can be regenerated with this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NOT_CLOSED_LOOP = {"eval_offline.json", "eval_probe.json"}
RESULT_FIELDS = ("sim", "success_rate", "successes", "episodes", "ci95", "per_task")


class ResultsError(ValueError):
    pass


def condition(result: dict) -> str:
    """A column name: the suite (or simulator), then what was changed for this evaluation."""
    s = result.get("settings", {})
    name = s.get("suite") or result["sim"]
    if s.get("first_state"):
        name += f", states {s['first_state']}-{s['first_state'] + s['episodes_per_task'] - 1}"
    if s.get("camera_shift"):
        name += " + camera {:g} m, {:g} deg".format(*s["camera_shift"])
    for hidden in s.get("ablate") or ():
        name += f" - {hidden}"
    if s.get("tasks"):  # a subset of the suite's tasks (eval.py --tasks)
        name += (", task " if len(s["tasks"]) == 1 else ", tasks ") + ",".join(map(str, s["tasks"]))
    if s.get("scenes"):  # new scenes instead of the benchmark's states (eval.py --scenes)
        name += f", {s['scenes']} scenes"
    return name


def load_run(run: Path) -> dict[str, dict]:
    """{condition: result} from run/eval_*.json."""
    if not run.is_dir():
        raise ResultsError(f"{run} is not a run directory; pass the directories eval.py wrote eval_*.json into")
    results = {}
    for path in sorted(run.glob("eval_*.json")):
        if path.name in NOT_CLOSED_LOOP:
            continue
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path} is not valid JSON ({err}); rerun eval.py for it or move it out of {run}") from err
        missing = [k for k in RESULT_FIELDS if k not in result] if isinstance(result, dict) else list(RESULT_FIELDS)
        if missing:
            raise ResultsError(f"{path} is not an eval.py closed-loop result (missing {missing}); "
                               f"rerun eval.py for it or move it out of {run}")
        key = condition(result)
        if key in results:
            raise ResultsError(f"{run} holds two results for {key!r}; keep one")
        results[key] = result
    if not results:
        raise ResultsError(f"{run} has no closed-loop eval_*.json; score it first: "
                           f"python scripts/eval.py --checkpoint {run} --sim libero ...")
    return results


def cell(result: dict | None) -> str:
    if result is None:
        return "-"
    low, high = result["ci95"]
    return (f"{result['success_rate']:.1%} ({result['successes']}/{result['episodes']}) "
            f"[{100 * low:.1f}, {100 * high:.1f}]")


def summary_table(runs: dict[str, dict[str, dict]]) -> str:
    """One row per run, one column per condition (in the order first seen)."""
    columns = list(dict.fromkeys(c for results in runs.values() for c in results))
    lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, results in runs.items():
        lines.append(f"| {name} | " + " | ".join(cell(results.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def per_task_table(runs: dict[str, dict[str, dict]], column: str) -> str:
    """Tasks as rows, runs as columns: successes/episodes of each task under one condition."""
    tasks: dict[int, str] = {}
    for results in runs.values():
        for row in results.get(column, {}).get("per_task", []):
            tasks.setdefault(row["task"], row.get("instruction", ""))
    by_run = [{r["task"]: r for r in results.get(column, {}).get("per_task", [])} for results in runs.values()]
    lines = [f"{column}:", "", "| task | instruction | " + " | ".join(runs) + " |", "|---" * (len(runs) + 2) + "|"]
    for task in sorted(tasks):
        row_cells = ["-" if task not in rows else f"{rows[task]['successes']}/{rows[task]['episodes']}"
                     for rows in by_run]
        lines.append(f"| {task} | {tasks[task]} | " + " | ".join(row_cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories holding eval_*.json")
    parser.add_argument("--per_task", action="store_true", help="also a per-task table for each condition")
    args = parser.parse_args(argv)
    try:
        runs = {run: load_run(Path(run)) for run in args.runs}
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary_table(runs))
    if args.per_task:
        for column in dict.fromkeys(c for results in runs.values() for c in results):
            print()
            print(per_task_table(runs, column))
    return 0


if __name__ == "__main__":
    sys.exit(main())
