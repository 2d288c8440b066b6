"""LIBERO demonstrations from the scripted expert, written as LeRobot v3.0 and/or LIBERO HDF5.

    python scripts/generate_libero_demos.py --tasks 0,1 --episodes_per_task 10 --out data/ls01

The simulation runs without cameras (about 10x faster); each kept episode's frames are rendered
afterwards by replaying its saved MuJoCo states. For another suite nothing changes here as long as
the expert solves its tasks (vggt_vla/sim/libero_expert.py reads each task's goal from its BDDL).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..constants import ACTION_NAMES, STATE_KEY
from ..data.libero_hdf5 import LiberoHDF5Writer
from ..data.writer import LeRobotWriter
from .libero import (CAMERAS, STATE_NAMES, LiberoEnv, cached_env, load_task,
                     map_jobs, num_tasks, quat_to_axis_angle)
from .libero_expert import LiberoExpert


def record_demo(env: LiberoEnv, expert: LiberoExpert, init_state: int, *, action_noise: float = 0.0,
                rng: Optional[np.random.Generator] = None, seed: Optional[int] = None) -> Optional[dict]:
    """One expert episode from `init_state`, as arrays with one row per control step (None if the
    expert failed). The camera frames are rendered afterwards by replaying the saved MuJoCo states,
    so the simulation itself runs without cameras (~10x faster); the replayed frames equal live ones.

    action_noise: Gaussian noise (in action units) added to the executed translation/rotation, while
    the expert's own action is recorded: the data then shows recoveries from slightly-off states.
    """
    obs = env.reset(init_state, seed=seed)
    expert.reset()
    rows: dict[str, list] = {k: [] for k in ("sim_state", "state", "action", "eef_pos", "eef_quat", "gripper",
                                               "joints")}
    while not env.done:
        raw = env.raw
        rows["sim_state"].append(env.sim_state())
        rows["state"].append(obs[STATE_KEY])
        rows["eef_pos"].append(raw["robot0_eef_pos"])
        rows["eef_quat"].append(raw["robot0_eef_quat"])
        rows["gripper"].append(raw["robot0_gripper_qpos"])
        rows["joints"].append(raw["robot0_joint_pos"])
        action = expert.select_action(obs)
        rows["action"].append(action)
        executed = action.astype(np.float64)
        if action_noise > 0:
            executed[:6] += (rng or np.random.default_rng()).normal(0.0, action_noise, size=6)
        obs, _ = env.step(executed)
    if not env.success:
        return None
    out = {k: np.stack(v) for k, v in rows.items()}
    out["eef_axis_angle"] = np.stack([quat_to_axis_angle(q) for q in out["eef_quat"]])
    renders = [env.render_state(state) for state in out["sim_state"]]
    for key in CAMERAS:  # at the env's camera size
        out[key] = np.stack([r[key] for r in renders])
    out["instruction"] = env.instruction
    out["task"], out["init_state"] = env.task.task_id, init_state
    return out


_GEN: dict = {}


def _demo_worker_init(settings: dict) -> None:
    _GEN.clear()
    _GEN.update(settings)


def _demo_job(job: tuple[int, int]) -> tuple[int, int, Optional[dict]]:
    task, init_state = job
    s = _GEN
    env = cached_env(s["suite"], task, camera_size=s["image_size"], cameras=False, fast_render=s["fast_render"])
    if _GEN.get("expert_env") is not env:
        _GEN["expert"], _GEN["expert_env"] = LiberoExpert(env), env
    seed = s["seed"] + 1000 * task + init_state
    rng = np.random.default_rng(seed)
    return task, init_state, record_demo(env, _GEN["expert"], init_state, action_noise=s["action_noise"], rng=rng,
                                         seed=seed)


def lerobot_features(image_size: int) -> dict:
    """The feature schema of lerobot/libero_*_image (PNG frames in parquet)."""
    cam = {"dtype": "image", "shape": [image_size, image_size, 3], "names": ["height", "width", "channels"]}
    return {**{k: dict(cam) for k in CAMERAS},
            STATE_KEY: {"dtype": "float32", "shape": [8], "names": STATE_NAMES},
            "action": {"dtype": "float32", "shape": [7], "names": ACTION_NAMES}}


# The LeRobot LIBERO datasets label their frames 10 fps although each row is one 20 Hz control step
# (OpenVLA's regenerated demos, every step kept); we write the same label and the same one row per
# control step, so a policy trained on either executes its actions at the simulator's 20 Hz.
LEROBOT_FPS = 10


def generate_demos(out: str, *, suite: str = "libero_spatial", tasks: Optional[list[int]] = None,
                   episodes_per_task: int = 50, fmt: str = "lerobot", image_size: Optional[int] = None,
                   fast_render: bool = False, action_noise: float = 0.0, workers: int = 1, seed: int = 0,
                   overwrite: bool = False, progress: bool = True) -> dict:
    """Run the expert from initial states 0..N-1 of each task, keep the successful episodes and
    write them as a LeRobot v3.0 dataset (fmt "lerobot", at `out`), LIBERO HDF5 files (fmt
    "libero_hdf5", one <task>_demo.hdf5 per task in `out`) or both (out/lerobot, out/libero_hdf5).
    Returns the expert's success per task (also written to <out>/expert_success.json)."""
    if fmt not in ("lerobot", "libero_hdf5", "both"):
        raise ValueError(f"format {fmt!r}: choose lerobot, libero_hdf5 or both")
    size = image_size or (128 if fmt == "libero_hdf5" else 256)  # each format's original resolution
    tasks = list(range(num_tasks(suite))) if tasks is None else list(tasks)
    infos = {t: load_task(suite, t) for t in tasks}
    for t, info in infos.items():
        if not 1 <= episodes_per_task <= len(info.init_states):
            raise ValueError(f"episodes_per_task={episodes_per_task}: {suite} task {t} has "
                             f"{len(info.init_states)} initial states")
    root = Path(out)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root} exists and is not empty; pass --overwrite or another --out")
    lerobot_root = root if fmt == "lerobot" else root / "lerobot"
    hdf5_root = root if fmt == "libero_hdf5" else root / "libero_hdf5"
    writer = None
    if fmt in ("lerobot", "both"):
        writer = LeRobotWriter(lerobot_root, fps=LEROBOT_FPS, features=lerobot_features(size), version="v3.0",
                               robot_type="panda", overwrite=True)
    h5: dict[int, LiberoHDF5Writer] = {}
    settings = {"suite": suite, "image_size": size, "fast_render": fast_render, "action_noise": action_noise,
                "seed": seed}
    jobs = [(t, k) for t in tasks for k in range(episodes_per_task)]
    results: dict[int, list[bool]] = {t: [] for t in tasks}
    start = time.perf_counter()
    for task, k, demo in map_jobs(_demo_job, jobs, workers, _demo_worker_init, (settings,)):
        results[task].append(demo is not None)
        if progress:
            steps = f"{len(demo['action'])} steps" if demo is not None else "failed, skipped"
            print(f"  task {task} init {k:2d}: {steps}", flush=True)
        if demo is None:
            continue
        if writer is not None:
            frames = {key: demo[key] for key in CAMERAS}
            frames[STATE_KEY] = demo["state"].astype(np.float32)
            frames["action"] = demo["action"].astype(np.float32)
            writer.add_episode(frames, task=demo["instruction"])
        if fmt in ("libero_hdf5", "both"):
            if task not in h5:
                info = infos[task]
                h5[task] = LiberoHDF5Writer(hdf5_root / f"{info.name}_demo.hdf5", instruction=info.instruction,
                                            bddl_file=info.bddl_file, overwrite=True,
                                            extra_attrs={"env_name": suite, "fast_render": int(fast_render),
                                                         "generated_by": "vggt_vla scripted expert"})
            cams = list(CAMERAS)
            robot_states = np.concatenate([demo["gripper"], demo["eef_pos"], demo["eef_quat"]], axis=1)
            h5[task].add_demo(actions=demo["action"], states=demo["sim_state"], robot_states=robot_states,
                              agentview_rgb=demo[cams[0]], eye_in_hand_rgb=demo[cams[1]], ee_pos=demo["eef_pos"],
                              ee_ori=demo["eef_axis_angle"], gripper_states=demo["gripper"],
                              joint_states=demo["joints"])
    for w in h5.values():
        w.close()
    kept = sum(sum(r) for r in results.values())
    if writer is not None:
        if kept == 0:
            raise RuntimeError("the expert solved no episode; nothing to write")
        writer.finalize()
    summary = {"suite": suite, "format": fmt, "image_size": size, "fast_render": fast_render,
               "action_noise": action_noise, "seed": seed, "episodes": len(jobs), "kept": kept,
               "wall_time_s": round(time.perf_counter() - start, 1),
               "per_task": [{"task": t, "instruction": infos[t].instruction, "successes": sum(results[t]),
                             "episodes": len(results[t]), "success_rate": sum(results[t]) / max(1, len(results[t]))}
                            for t in tasks]}
    root.mkdir(parents=True, exist_ok=True)
    (root / "expert_success.json").write_text(json.dumps(summary, indent=2))
    return summary
