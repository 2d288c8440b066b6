"""Closed-loop evaluation: run a policy (or a simulator's scripted expert, or random actions) in a
simulator and report its success rate, for every simulator the same way. The one episode runner:
sim/ holds envs and experts, and nothing else in the package runs their episodes to a score.

    python scripts/eval.py --checkpoint logs/demo --sim demo --episodes 200 --seed 500000
    python scripts/eval.py --checkpoint logs/libero --sim libero --episodes_per_task 10 --workers 2
    python scripts/eval.py --sim libero --policy scripted --tasks 0,4 --episodes_per_task 10
    python scripts/eval.py --sim demo --policy random --episodes 200          # the chance level

    from vggt_vla.closed_loop import ClosedLoopSpec, closed_loop_eval
    result = closed_loop_eval(ClosedLoopSpec(sim="demo", policy="logs/demo", episodes_per_task=200))

Simulators are looked up in SIMULATORS. To add one, write its env and `Simulator` value in one file
under vggt_vla/sim/ (the protocol: vggt_vla/sim/protocol.py) and add the entry here.

What the runner does for each episode (in this process, or in `workers` spawned processes which
each load the checkpoint once, or each connect once to a policy server, vggt_vla/serving.py):
build the task's env, seed numpy, torch and the policy's sampler (a server's: that connection's)
with the episode's seed, reset the actor, then step until the env is done. The env's cameras reach
the policy under the policy's own camera keys (matched by position when they differ). A simulator
or policy exception fails that episode only and is counted under "errors". The result holds the
success rate with a 95% Wilson interval overall, per task and per episode category (the env's
`tags()`), episode lengths, wall time, every setting, the simulator's package versions and one
record per episode; MP4s of the first episodes of each task are optional.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from vggt_vla.constants import ACTION_NAMES
from vggt_vla.data.mp4 import write_video
from vggt_vla.parallel import map_jobs
from vggt_vla.sim import demo_env, libero
from vggt_vla.sim.light_meshes import check_max_mesh_faces
from vggt_vla.sim.protocol import Actor, EnvOptions, Episode, Simulator

SIMULATORS: dict[str, Simulator] = {"demo": demo_env.SIMULATOR, "libero": libero.SIMULATOR}
ABLATIONS = ("images", "instruction")
# Actors that are not a checkpoint: the simulator's privileged expert (a check of the loop and of
# the expert), and uniform random actions (the floor a policy must beat).
BUILT_IN_POLICIES = ("scripted", "random")


@dataclass
class ClosedLoopSpec:
    """What `closed_loop_eval` runs. Every field is recorded in the results."""

    sim: str = "demo"
    policy: str = "scripted"             # a checkpoint (run directory or .pt), "scripted" (the expert) or "random"
    server: Optional[str] = None         # a policy server (ws://HOST:PORT) runs `policy` (its checkpoint, recorded)
    episodes_per_task: int = 50          # the demo: episodes; LIBERO: initial states 0..N-1 of each task
    tasks: Optional[list[int]] = None    # task ids (None: every task of the suite)
    seed: Optional[int] = None           # first episode seed (None: the simulator's default)
    first_state: int = 0                 # LIBERO: start from initial states first_state.. (10: a second set)
    scenes: Optional[str] = None         # LIBERO: "sampled" / "redrawn" scenes instead (EnvOptions.scenes)
    suite: Optional[str] = None          # task suite (None: the simulator's default)
    workers: int = 1                     # parallel processes
    camera_size: Optional[int] = None    # render resolution (None: the simulator's default)
    fast_render: bool = False            # cheaper rendering; must match the training data
    max_mesh_faces: Optional[int] = None  # LIBERO: simplified visual meshes; must match the training data
    camera_shift: Optional[tuple[float, float]] = None  # agent view moved (metres, degrees); EnvOptions
    max_steps: Optional[int] = None      # policy steps per episode (None: the simulator's cap)
    ablate: tuple[str, ...] = ()         # a control: inputs hidden from the policy (AblatedInputs)
    video_dir: Optional[str] = None      # write MP4s here ...
    videos_per_task: int = 2             # ... of the first N episodes of each task
    device: str = "auto"
    # A learned policy's inference settings; None: its checkpoint's inference: section.
    n_action_steps: Optional[int] = None          # actions executed per predicted chunk
    temporal_ensemble: Optional[float | str] = None  # ACT coefficient, or "off": the action queue
    env_options: EnvOptions = field(init=False, repr=False)

    def __post_init__(self):
        if self.sim not in SIMULATORS:
            raise ValueError(f"unknown simulator {self.sim!r}; available: {sorted(SIMULATORS)}")
        self.ablate = _checked_ablations(self.ablate)
        if self.ablate and self.policy in BUILT_IN_POLICIES:
            reads = ("the scripted expert reads the simulator" if self.policy == "scripted"
                     else "random actions read nothing")
            raise ValueError(f"ablate hides inputs from a learned policy; {reads}")
        if self.server and (self.ablate or self.policy in BUILT_IN_POLICIES):
            raise ValueError("a policy server runs its checkpoint as it is: set policy to that checkpoint (eval.py "
                             "takes it from the server) and drop ablate (an in-process control)")
        if self.first_state < 0:
            raise ValueError(f"first_state={self.first_state} must be >= 0")
        if self.workers < 1 or self.episodes_per_task < 1:
            raise ValueError(f"workers={self.workers} and episodes_per_task={self.episodes_per_task} must be >= 1")
        if self.camera_size is not None and self.camera_size <= 0:
            raise ValueError(f"camera_size={self.camera_size} must be > 0")
        if self.camera_shift is not None:
            self.camera_shift = tuple(float(v) for v in self.camera_shift)
            if len(self.camera_shift) != 2 or not all(math.isfinite(v) for v in self.camera_shift):
                raise ValueError(f"camera_shift={self.camera_shift}: give (metres, degrees), e.g. (0.05, 5)")
        check_max_mesh_faces(self.max_mesh_faces)
        self.env_options = EnvOptions(suite=self.suite, scenes=self.scenes, camera_size=self.camera_size,
                                      fast_render=self.fast_render,
                                      camera_shift=self.camera_shift, max_mesh_faces=self.max_mesh_faces,
                                      max_steps=self.max_steps, cameras=self.policy not in BUILT_IN_POLICIES)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sane at 0% and 100%, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _checked_ablations(ablate) -> tuple[str, ...]:
    bad = [a for a in ablate if a not in ABLATIONS]
    if bad:
        raise ValueError(f"cannot ablate {bad}; choose from {list(ABLATIONS)}")
    return tuple(ablate)


class AblatedInputs:
    """A policy run as a control experiment: every camera image replaced by uniform grey
    ("images"), or the instruction by an empty string ("instruction"). A policy that reads its
    images should then fall to about the random baseline; one that reads the instruction, to
    about the chance of picking the named object."""

    def __init__(self, policy, ablate: tuple[str, ...]):
        self.policy, self.ablate = policy, _checked_ablations(ablate)
        self.generator = policy.generator

    def reset(self) -> None:
        self.policy.reset()

    def select_action(self, obs: dict) -> np.ndarray:
        obs = dict(obs)
        if "images" in self.ablate:
            for key in self.policy.cfg.data.camera_keys:
                obs[key] = np.full_like(np.asarray(obs[key]), 128)
        if "instruction" in self.ablate:
            obs["instruction"] = ""
            obs.pop("task", None)
        return self.policy.select_action(obs)


class RandomActor:
    """Uniform random actions in [-1, 1], from numpy's global stream, which the runner seeds per
    episode: the success a policy that ignores its inputs gets by chance."""

    def reset(self) -> None:
        pass

    def select_action(self, obs: dict) -> np.ndarray:
        return np.random.uniform(-1.0, 1.0, size=len(ACTION_NAMES)).astype(np.float32)  # [A]


# ---------------------------------------------------------------------------------- one episode

_WORKER: dict = {}


def _init_worker(spec: ClosedLoopSpec, sim: Simulator, threads: Optional[int], policy=None) -> None:
    """Per process: the simulator and the actor (the policy, loaded once; or None for a built-in
    one, built per env). threads: torch threads in a spawned worker (None: leave as is)."""
    if threads is not None:
        torch.set_num_threads(threads)
    _WORKER.clear()
    _WORKER["spec"], _WORKER["sim"] = spec, sim
    if policy is None and spec.server:  # one connection per process; the queue is kept client side
        from vggt_vla.serving import PolicyClient

        policy = PolicyClient(spec.server, n_action_steps=spec.n_action_steps, temporal_ensemble=spec.temporal_ensemble)
    elif policy is None and spec.policy not in BUILT_IN_POLICIES:
        from vggt_vla.policy import Policy

        policy = Policy.from_pretrained(spec.policy, device=spec.device, n_action_steps=spec.n_action_steps,
                                        temporal_ensemble_coeff=spec.temporal_ensemble)
    if policy is not None and spec.ablate:
        policy = AblatedInputs(policy, spec.ablate)
    _WORKER["policy"] = policy


def _actor_for(env) -> tuple[Actor, Optional[list[str]]]:
    """(actor, the policy's camera keys; None for a built-in actor, which reads no camera)."""
    policy = _WORKER["policy"]
    if policy is not None:
        inner = policy.policy if isinstance(policy, AblatedInputs) else policy
        keys = inner.camera_keys if hasattr(inner, "camera_keys") else inner.cfg.data.camera_keys  # a PolicyClient's
        return policy, list(keys)
    if _WORKER["spec"].policy == "random":
        return RandomActor(), None
    if _WORKER.get("expert_env") is not env:
        _WORKER["expert"], _WORKER["expert_env"] = _WORKER["sim"].make_expert(env), env
    return _WORKER["expert"], None


def policy_view(obs: dict, env_keys: tuple[str, ...], policy_keys: list[str]) -> dict:
    """The env's cameras under the policy's camera keys, matched by position (agent view first)
    where the names differ, e.g. a policy trained on a dataset with other camera names."""
    out = {k: v for k, v in obs.items() if k not in env_keys}
    for i, key in enumerate(policy_keys):
        out[key] = obs[key] if key in obs else obs[env_keys[min(i, len(env_keys) - 1)]]
    return out


def _run_episode(job: tuple[Episode, Optional[str]]) -> dict:
    episode, video_path = job
    spec: ClosedLoopSpec = _WORKER["spec"]
    env = _WORKER["sim"].make_env(spec.env_options, episode.task)
    actor, keys = _actor_for(env)
    np.random.seed(episode.seed % 2**32)
    torch.manual_seed(episode.seed)
    start = time.perf_counter()
    frames, error, policy_s = [], None, 0.0
    try:
        if hasattr(actor, "seed_sampler"):  # a PolicyClient: the server reseeds its connection's sampler
            actor.seed_sampler(episode.seed)
        elif getattr(actor, "generator", None) is not None:
            actor.generator.manual_seed(episode.seed)
        obs = env.start(episode)
        actor.reset()
        while True:
            if video_path:
                frames.append(env.video_frame())
            if env.done:
                break
            t = time.perf_counter()
            action = actor.select_action(policy_view(obs, env.camera_keys, keys) if keys else obs)
            policy_s += time.perf_counter() - t
            obs, _ = env.step(action)
    except Exception as err:  # a diverging simulation or a policy error fails this episode only
        error = f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    # Where the time went: the policy (or expert), the env's rendering when it reports it, the rest
    # (physics, resets, video frames).
    render_s = getattr(env, "render_s", None)
    record = {"task": episode.task, "init_state": episode.init_state, "seed": episode.seed,
              "instruction": getattr(env, "instruction", ""), "success": bool(env.success) and error is None,
              "steps": int(env.steps), "max_steps": int(env.max_steps), "seconds": round(seconds, 2),
              "seconds_policy": round(policy_s, 2), "seconds_render": None if render_s is None else round(render_s, 2),
              "error": error, "tags": env.tags()}
    if frames:
        path = Path(video_path.format(outcome="success" if record["success"] else "failure"))
        write_video(path, frames)
        record["video"] = str(path)
    return record


# ---------------------------------------------------------------------------------- many episodes

def closed_loop_eval(spec: ClosedLoopSpec, policy=None, progress: bool = True) -> dict:
    """Run spec's episodes and summarise them. policy: an already loaded Policy to use instead of
    loading spec.policy (in this process only, so workers must be 1)."""
    if policy is not None and spec.workers > 1:
        raise ValueError("an in-memory policy runs in this process; pass its checkpoint path for workers > 1")
    if policy is None and not spec.server and spec.policy not in BUILT_IN_POLICIES and not Path(spec.policy).exists():
        raise FileNotFoundError(f"checkpoint {spec.policy!r} does not exist; pass a run directory or .pt file, "
                                f"or --policy scripted")
    sim = SIMULATORS[spec.sim]
    episodes = sim.episodes(spec.env_options, spec.tasks, spec.episodes_per_task, spec.seed, spec.first_state)
    jobs, per_task_so_far = [], Counter()
    for ep in episodes:  # videos of the first videos_per_task episodes of each task
        filmed = spec.video_dir is not None and per_task_so_far[ep.task] < spec.videos_per_task
        per_task_so_far[ep.task] += 1
        jobs.append((ep, _video_path(spec, ep) if filmed else None))
    workers = min(spec.workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    start = time.perf_counter()
    records = []
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=f"{spec.sim} episodes", disable=not progress, dynamic_ncols=True,
               mininterval=0.2 if sys.stderr.isatty() else 30)  # a log file gets a line every 30 s
    for record in map_jobs(_run_episode, jobs, workers, _init_worker, (spec, sim, threads, policy)):
        records.append(record)
        bar.set_postfix_str(f"success {sum(r['success'] for r in records)}/{len(records)}", refresh=False)
        bar.update(1)
        if record["error"]:
            bar.write(f"  task {record['task']} seed {record['seed']}: {record['error']}")
    bar.close()
    per_task = []
    for t in dict.fromkeys(r["task"] for r in records):
        mine = [r for r in records if r["task"] == t]
        texts = {r["instruction"] for r in mine}
        per_task.append({"task": t, "instruction": texts.pop() if len(texts) == 1 else "(one per episode)",
                         **success_summary(mine)})
    return {"sim": spec.sim, **success_summary(records), "per_task": per_task,
            "breakdown": success_breakdown(records), "wall_time_s": round(time.perf_counter() - start, 1),
            "time_split": time_split(records),
            "max_steps": max(r["max_steps"] for r in records), "settings": _settings(spec),
            "simulator_versions": sim.versions(), "episode_records": records}


def _video_path(spec: ClosedLoopSpec, ep: Episode) -> str:
    start = ("redrawn" if ep.redraw_fixtures else "sampled") if ep.init_state is None else f"init{ep.init_state:02d}"
    name = f"{spec.suite or spec.sim}_task{ep.task:02d}_{start}_seed{ep.seed}_{{outcome}}.mp4"
    return str(Path(spec.video_dir) / name)


def _settings(spec: ClosedLoopSpec) -> dict:
    out = dataclasses.asdict(spec)
    out.pop("env_options")
    out["ablate"] = list(spec.ablate)
    return out


def time_split(records: list[dict]) -> dict:
    """Summed episode seconds (over all workers) split into policy, rendering and the rest of the
    simulator (physics, resets), with their fractions."""
    total = sum(r["seconds"] for r in records)
    policy = sum(r["seconds_policy"] for r in records)
    render = sum(r["seconds_render"] or 0.0 for r in records)
    parts = {"policy_s": policy, "render_s": render, "simulator_s": max(0.0, total - policy - render)}
    out = {"episode_s": round(total, 3), **{k: round(v, 3) for k, v in parts.items()}}
    out.update({k.replace("_s", "_fraction"): round(v / total, 3) if total else 0.0 for k, v in parts.items()})
    return out


def success_summary(records: list[dict]) -> dict:
    """Success rate with its 95% Wilson interval, episode lengths and errors over `records`."""
    wins = sum(r["success"] for r in records)
    low, high = wilson_interval(wins, len(records))
    lengths = [r["steps"] for r in records]
    won = [r["steps"] for r in records if r["success"]]
    return {"episodes": len(records), "successes": wins, "success_rate": wins / max(1, len(records)),
            "ci95": [low, high], "mean_length": float(np.mean(lengths)) if lengths else 0.0,
            "mean_success_length": float(np.mean(won)) if won else None,
            "errors": sum(r.get("error") is not None for r in records)}


def success_breakdown(records: list[dict]) -> dict:
    """{category: {value: {successes, episodes, success_rate, ci95}}} over the episodes' tags."""
    table: dict = {}
    tags = [r.get("tags", {}) for r in records]
    for category in sorted({k for t in tags for k in t}):
        for value in sorted({t[category] for t in tags if category in t}):
            wins = [r["success"] for r, t in zip(records, tags) if t.get(category) == value]
            low, high = wilson_interval(sum(wins), len(wins))
            table.setdefault(category, {})[value] = {"successes": int(sum(wins)), "episodes": len(wins),
                                                     "success_rate": sum(wins) / len(wins), "ci95": [low, high]}
    return table


def format_result(result: dict) -> str:
    """The per-task table, the category breakdown and the overall line, as eval.py prints them."""
    s = result["settings"]
    lines = [f"{'task':>4}  {'success':>8}  {'95% CI':>15}  {'mean len':>8}  instruction"]
    for row in result["per_task"]:
        low, high = row["ci95"]
        lines.append(f"{row['task']:>4}  {row['success_rate']:>8.1%}  [{low:5.1%}, {high:5.1%}]  "
                     f"{row['mean_length']:>8.1f}  {row['instruction']}")
    for category, rows in result["breakdown"].items():
        for value, row in rows.items():
            low, high = row["ci95"]
            label = f"{category}: {value}"
            lines.append(f"  {label:<44} {row['success_rate']:6.1%} ({row['successes']}/{row['episodes']}), "
                         f"[{low:.1%}, {high:.1%}]")
    low, high = result["ci95"]
    hidden = f" with {' and '.join(s['ablate'])} hidden" if s["ablate"] else ""
    errors = f", {result['errors']} episode(s) ended by an error" if result["errors"] else ""
    t = result["time_split"]
    lines.append(f"time in episodes: {t['episode_s']:.0f} s = policy {t['policy_fraction']:.0%}, rendering "
                 f"{t['render_fraction']:.0%}, rest of the simulator {t['simulator_fraction']:.0%}")
    lines.append(f"{result['sim']}{hidden} overall: {result['success_rate']:.1%} "
                 f"({result['successes']}/{result['episodes']}), 95% CI [{low:.1%}, {high:.1%}], mean length "
                 f"{result['mean_length']:.1f} steps, wall time {result['wall_time_s']:.0f} s with "
                 f"{s['workers']} worker(s){errors}")
    return "\n".join(lines)
