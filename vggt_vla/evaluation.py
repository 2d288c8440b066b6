"""Evaluate a policy: offline on a dataset's validation episodes, or closed loop in a simulator.

    python scripts/eval.py --checkpoint logs/demo --dataset data/demo           # offline
    python scripts/eval.py --checkpoint logs/demo --sim demo --episodes 50      # closed loop

Offline: L1 and MSE per action dimension and per horizon step, in the dataset's action units
(the model's chunk un-normalised), over the validation episodes of the training split, plus a
PNG per episode of the first predicted action vs the ground truth over the episode.

Closed loop: success rate over N episodes with a 95% Wilson confidence interval, and the same per
episode category (the demo: each instruction type, and whether another object shares the target's
colour). Simulators are looked up by name in SIMULATORS: add an entry (a function (policy,
episodes, seed) -> one dict per episode, {"success": bool, category name: value, ...}) for
another one.

LIBERO (needs requirements-sim.txt) has its own entry point, `libero_eval(LiberoEvalSpec(...))`:
episodes from each task's fixed initial states, in parallel processes (each loads the checkpoint,
or runs the scripted expert with --policy scripted), success per task and overall with intervals,
episode lengths, wall time, optional MP4s:

    python scripts/eval.py --checkpoint logs/libero --sim libero --suite libero_spatial --workers 2
    python scripts/eval.py --sim libero --policy scripted --tasks 0,1 --episodes_per_task 10
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from vggt_vla.policy import Policy
from vggt_vla.sim.demo_env import EVAL_SEEDS, DemoEnv, rollout
from vggt_vla.training.metrics import ChunkErrors


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sane at 0% and 100%, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# ---------------------------------------------------------------------------------- offline

def held_out_frames(policy: Policy, dataset: Optional[str] = None):
    """(frames, split name): the validation episodes of the policy's training split, or all
    training frames when the run had none. dataset: another root or repo id with the same
    features (default: the training dataset)."""
    from vggt_vla.data.loader import build_datasets

    cfg = copy.deepcopy(policy.cfg)
    if dataset is not None and Path(dataset).exists():
        cfg.data.dataset_root = dataset
    elif dataset is not None:
        cfg.data.dataset_root, cfg.data.dataset_repo = None, dataset
    train, val, _ = build_datasets(cfg, policy.normalizer, progress=False)
    if val is not None:
        return val, "validation"
    return train, "train (the run had no validation split)"


def offline_eval(policy: Policy, dataset: Optional[str] = None, *, max_batches: Optional[int] = None,
                 batch_size: int = 16, plot_dir: Optional[str] = None, plot_episodes: int = 3) -> dict:
    """Chunk errors on the validation episodes of the policy's training split (dataset: another
    root or repo id with the same features; default: the training dataset)."""
    from vggt_vla.data.batch import to_device
    from vggt_vla.data.loader import make_loader

    subset, split = held_out_frames(policy, dataset)
    cfg = policy.cfg
    loader = make_loader(subset, batch_size=batch_size)
    key = cfg.data.action_key
    errors, norm_errors = ChunkErrors(), ChunkErrors()
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        batch = to_device(batch, policy.device)
        with torch.no_grad():
            pred = policy.model.predict_action_chunk(batch, policy.generator).float()  # [B, T, A]
        pad = batch["action_pad_mask"].bool()
        norm_errors.update(pred, batch["actions"], pad)
        errors.update(policy.normalizer.unnormalize(key, pred), policy.normalizer.unnormalize(key, batch["actions"]), pad)
    result = {"split": split, "frames": len(subset), **errors.summary(),
              "normalized": {k: v for k, v in norm_errors.summary().items() if k in ("l1", "mse")}}
    if plot_dir:
        result["plots"] = plot_episode_traces(policy, subset, plot_dir, plot_episodes)
    return result


def plot_episode_traces(policy: Policy, dataset, out_dir: str, episodes: int) -> list[str]:
    """For a few episodes: the first action of each predicted chunk vs the recorded action."""
    from vggt_vla.data.batch import collate, to_device
    from vggt_vla.training.run_logger import trace_plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = dataset.source
    rows = np.asarray(dataset.rows)
    episode_of = source.row_episode[rows]
    paths = []
    key = policy.cfg.data.action_key
    for ep in list(dict.fromkeys(episode_of.tolist()))[:episodes]:
        idx = np.nonzero(episode_of == ep)[0]
        preds, targets = [], []
        for start in range(0, len(idx), 32):
            batch = collate([dataset[int(i)] for i in idx[start:start + 32]])
            batch = to_device(batch, policy.device)
            with torch.no_grad():
                pred = policy.model.predict_action_chunk(batch, policy.generator).float().cpu()
            preds.append(pred[:, 0])
            targets.append(batch["actions"][:, 0].cpu())
        pred = policy.normalizer.unnormalize(key, torch.cat(preds)).numpy()
        target = policy.normalizer.unnormalize(key, torch.cat(targets)).numpy()
        path = out / f"episode_{int(ep):06d}_actions.png"
        trace_plot(pred, target, width=640, row_h=70).save(path)
        paths.append(str(path))
    return paths


# ---------------------------------------------------------------------------------- closed loop

def run_demo(policy: Policy, episodes: int, seed: int = EVAL_SEEDS.start) -> list[dict]:
    """The embedded demo environment (vggt_vla/sim/demo_env.py), seeds disjoint from its dataset.
    Each episode is tagged with its instruction type and whether the target's colour is unique in
    the scene (else only its shape tells it apart)."""
    env = DemoEnv()
    results = []
    for k in range(episodes):
        policy.reset()
        success = bool(rollout(env, policy.select_action, seed + k))
        target = env.objects[env.target]
        shared = any(o.color == target.color for o in env.objects if o is not target)
        results.append({"success": success,
                        "instruction": env.task if env.direction_name is None else f"{env.task} {env.direction_name}",
                        "target colour": "shared with another object" if shared else "unique"})
    return results


SIMULATORS: dict[str, Callable[[Policy, int, int], list[dict]]] = {"demo": run_demo}


def success_breakdown(results: list[dict]) -> dict:
    """{category: {value: {successes, episodes, success_rate, ci95}}} over the episodes' tags."""
    table: dict = {}
    for category in sorted({k for r in results for k in r if k != "success"}):
        for value in sorted({r[category] for r in results if category in r}):
            wins = [r["success"] for r in results if r.get(category) == value]
            low, high = wilson_interval(sum(wins), len(wins))
            table.setdefault(category, {})[value] = {"successes": int(sum(wins)), "episodes": len(wins),
                                                     "success_rate": sum(wins) / len(wins), "ci95": [low, high]}
    return table


ABLATIONS = ("images", "instruction")


class AblatedInputs:
    """A policy run as a control experiment: every camera image replaced by uniform grey
    ("images"), or the instruction by an empty string ("instruction"). A policy that reads its
    images should then fall to about the random baseline; one that reads the instruction, to
    about the chance of picking the named object."""

    def __init__(self, policy: Policy, ablate: tuple[str, ...]):
        bad = [a for a in ablate if a not in ABLATIONS]
        if bad:
            raise ValueError(f"cannot ablate {bad}; choose from {list(ABLATIONS)}")
        self.policy, self.ablate = policy, tuple(ablate)

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


def closed_loop_eval(policy: Policy, sim: str, episodes: int, seed: Optional[int] = None,
                     ablate: tuple[str, ...] = ()) -> dict:
    """Success rate with its 95% Wilson interval. ablate: inputs hidden from the policy (a
    control experiment; see AblatedInputs)."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; available: {sorted(SIMULATORS)}")
    run = SIMULATORS[sim]
    actor = AblatedInputs(policy, ablate) if ablate else policy
    results = run(actor, episodes) if seed is None else run(actor, episodes, seed)
    wins = int(sum(r["success"] for r in results))
    low, high = wilson_interval(wins, len(results))
    return {"sim": sim, "episodes": len(results), "successes": wins, "success_rate": wins / max(1, len(results)),
            "ci95": [low, high], "breakdown": success_breakdown(results), "n_action_steps": policy.n_action_steps,
            "temporal_ensemble_coeff": policy.temporal_ensemble_coeff, "ablate": list(ablate)}


# ---------------------------------------------------------------------------------- LIBERO

@dataclass
class LiberoEvalSpec:
    """What `libero_eval` runs. Every field is recorded in the results."""

    policy: str = "scripted"             # "scripted" (the privileged expert) or a checkpoint path
    suite: str = "libero_spatial"
    tasks: Optional[list[int]] = None    # task ids (None: all tasks of the suite)
    episodes_per_task: int = 50          # initial states 0..N-1 of each task
    workers: int = 1                     # parallel processes
    seed: int = 0                        # episode k of task t uses seed + 1000 * t + k
    camera_size: int = 256               # render resolution (the LeRobot LIBERO datasets': 256)
    fast_render: bool = False            # no anti-aliasing / reflections: match the training data
    max_steps: Optional[int] = None      # policy steps per episode (None: the suite's cap)
    video_dir: Optional[str] = None      # write MP4s of episodes here
    videos_per_task: int = 2             # ... of the first N episodes of each task
    device: str = "auto"
    n_action_steps: int = 5
    temporal_ensemble: Optional[float] = None


_WORKER: dict = {}


def _libero_worker_init(spec: LiberoEvalSpec, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER.clear()
    _WORKER["spec"] = spec
    if spec.policy != "scripted":
        _WORKER["policy"] = Policy.from_pretrained(spec.policy, device=spec.device,
                                                   n_action_steps=spec.n_action_steps,
                                                   temporal_ensemble_coeff=spec.temporal_ensemble)


def _policy_view(obs: dict, camera_keys: list[str]) -> dict:
    """The env's cameras under the policy's camera keys, matched by position (agent view first,
    as data.camera_keys orders them) when the names differ."""
    from vggt_vla.sim.libero import CAMERAS

    env_keys = list(CAMERAS)
    out = {k: v for k, v in obs.items() if k not in env_keys}
    for i, key in enumerate(camera_keys):
        out[key] = obs[key] if key in obs else obs[env_keys[min(i, len(env_keys) - 1)]]
    return out


def _libero_episode(job: dict) -> dict:
    """One episode in this process (its env cached across jobs of the same task)."""
    import time

    from vggt_vla.sim.libero import cached_env
    from vggt_vla.sim.libero_expert import LiberoExpert

    spec: LiberoEvalSpec = _WORKER["spec"]
    scripted = spec.policy == "scripted"
    env = cached_env(spec.suite, job["task"], camera_size=spec.camera_size, cameras=not scripted,
                     fast_render=spec.fast_render, max_steps=spec.max_steps)
    if scripted:
        if _WORKER.get("expert_env") is not env:
            _WORKER["expert"], _WORKER["expert_env"] = LiberoExpert(env), env
        actor, keys = _WORKER["expert"], None
    else:
        actor, keys = _WORKER["policy"], list(_WORKER["policy"].cfg.data.camera_keys)
        actor.generator.manual_seed(job["seed"])
    np.random.seed(job["seed"] % 2**32)
    torch.manual_seed(job["seed"])
    start = time.perf_counter()
    frames, error = [], None
    try:
        obs = env.reset(job["init_state"], seed=job["seed"])
        actor.reset()
        while True:
            if job["video"]:
                frames.append(obs if not scripted else env.render_cameras())
            if env.done:
                break
            action = actor.select_action(_policy_view(obs, keys) if keys else obs)
            obs, _ = env.step(action)
    except Exception as err:  # a diverging simulation or a policy error fails this episode only
        error = f"{type(err).__name__}: {err}"
    record = {"task": job["task"], "init_state": job["init_state"], "seed": job["seed"],
              "success": bool(env.success) and error is None, "steps": int(env.steps),
              "seconds": round(time.perf_counter() - start, 2), "error": error}
    if frames:
        outcome = "success" if record["success"] else "failure"
        path = Path(job["video"]) / f"{spec.suite}_task{job['task']:02d}_init{job['init_state']:02d}_{outcome}.mp4"
        write_video(path, frames)
        record["video"] = str(path)
    return record


def write_video(path: Path, frames: list[dict], fps: int = 20) -> None:
    """Agent view and wrist camera side by side, upright for viewing, as H.264 (or MPEG-4) MP4."""
    import av

    from vggt_vla.sim.libero import CAMERAS

    path.parent.mkdir(parents=True, exist_ok=True)
    # Frames are in the datasets' orientation (180 degrees from the raw render); mirroring the
    # columns gives the upright picture (the raw render is only flipped vertically).
    images = [np.concatenate([f[k][:, ::-1] for k in CAMERAS], axis=1) for f in frames]
    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as container:
        try:
            stream = container.add_stream("libx264", rate=fps)
        except Exception:  # a PyAV build without libx264
            stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        for img in images:
            img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def libero_eval(spec: LiberoEvalSpec, progress: bool = True) -> dict:
    """Closed-loop LIBERO evaluation: success rate per task and overall (95% Wilson intervals),
    mean episode length, wall time, and one record per episode."""
    import dataclasses
    import os
    import time

    from vggt_vla.sim.libero import SUITE_MAX_STEPS, load_task, map_jobs, num_tasks, simulator_versions

    if spec.policy != "scripted" and not Path(spec.policy).exists():
        raise FileNotFoundError(f"checkpoint {spec.policy!r} does not exist; pass a run directory or .pt file, "
                                f"or --policy scripted")
    tasks = spec.tasks if spec.tasks is not None else list(range(num_tasks(spec.suite)))
    instructions = {}
    for t in tasks:
        task = load_task(spec.suite, t)
        instructions[t] = task.instruction
        if not 1 <= spec.episodes_per_task <= len(task.init_states):
            raise ValueError(f"episodes_per_task={spec.episodes_per_task}: {spec.suite} task {t} has "
                             f"{len(task.init_states)} initial states, so use 1..{len(task.init_states)}")
    jobs = [{"task": t, "init_state": k, "seed": spec.seed + 1000 * t + k,
             "video": spec.video_dir if spec.video_dir and k < spec.videos_per_task else None}
            for t in tasks for k in range(spec.episodes_per_task)]
    workers = max(1, min(spec.workers, len(jobs)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    start = time.perf_counter()
    episodes = []
    for record in map_jobs(_libero_episode, jobs, workers, _libero_worker_init, (spec, threads)):
        episodes.append(record)
        if progress:
            print(f"  task {record['task']} init {record['init_state']:2d}: "
                  f"{'success' if record['success'] else 'failure'} in {record['steps']} steps "
                  f"({record['seconds']:.1f} s){'  ' + record['error'] if record['error'] else ''}", flush=True)
    wall = time.perf_counter() - start
    per_task = []
    for t in tasks:
        mine = [e for e in episodes if e["task"] == t]
        per_task.append({"task": t, "instruction": instructions[t], **_rate(mine)})
    return {"sim": "libero", "suite": spec.suite, **_rate(episodes), "per_task": per_task,
            "wall_time_s": round(wall, 1), "max_steps": spec.max_steps or SUITE_MAX_STEPS.get(spec.suite, 500),
            "settings": dataclasses.asdict(spec), "simulator_versions": simulator_versions(),
            "episode_records": episodes}


def _rate(episodes: list[dict]) -> dict:
    wins = sum(e["success"] for e in episodes)
    low, high = wilson_interval(wins, len(episodes))
    lengths = [e["steps"] for e in episodes]
    won = [e["steps"] for e in episodes if e["success"]]
    return {"episodes": len(episodes), "successes": wins, "success_rate": wins / max(1, len(episodes)),
            "ci95": [low, high], "mean_length": float(np.mean(lengths)) if lengths else 0.0,
            "mean_success_length": float(np.mean(won)) if won else None,
            "errors": sum(e["error"] is not None for e in episodes)}
