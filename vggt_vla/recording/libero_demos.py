"""LIBERO demonstrations: the scripted expert on sampled scenes, resumably, in worker processes.

    python scripts/generate_libero_demos.py --tasks 0,1 --out data/ls01
    python scripts/generate_libero_demos.py --out data/ls_geo --geometry       # + depth and cameras

Demonstrations start from scenes LIBERO's placement sampler draws from seeds evaluation never uses
(or, on request, from the benchmark's fixed initial states). The simulation runs without cameras
(far cheaper) and saves each episode as it ends (a generation resumes); the kept episodes' frames
are rendered afterwards by replaying their saved MuJoCo states, with each camera's depth and
parameters when asked (`geometry`, or `rerender` to add them without simulating again). For
another suite nothing changes here as long as the expert solves its tasks
(vggt_vla/sim/libero_expert.py reads each task's goal from its BDDL). Written as LeRobot v3.0
and/or LIBERO HDF5. The simulator itself (requirements-sim.txt) is imported when an env is built.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from vggt_vla.constants import CAMERA_KEYS, STATE_KEY, camera_extrinsics_key, camera_intrinsics_key, depth_key
from vggt_vla.data.geometry import encode_depth
from vggt_vla.data.libero_hdf5 import LiberoHDF5Writer
from vggt_vla.data.writer import LeRobotWriter
from vggt_vla.parallel import map_jobs
from vggt_vla.recording.schema import episode_features
from vggt_vla.sim.layout_exchange import chosen_for_exchange
from vggt_vla.sim.libero import CAMERAS as LIBERO_CAMERAS
from vggt_vla.sim.libero import STATE_NAMES as LIBERO_STATE_NAMES
from vggt_vla.sim.libero import (DEMO_SEED, LiberoEnv, cached_env, libero_episodes, load_task, quat_to_axis_angle,
                                 sampled_episodes, simulator_versions)
from vggt_vla.sim.libero_expert import EXPERT_REVISION, LiberoExpert
from vggt_vla.sim.light_meshes import check_max_mesh_faces
from vggt_vla.sim.protocol import EnvOptions, Episode


# Settings a generation records that older generations lack, with the value they had then.
SETTINGS_ADDED_LATER = {"action_noise_correlation": 0.0, "max_mesh_faces": None, "layout_exchange": 0.0,
                        "redraw_fixtures": False, "expert_revision": 1}


def record_libero_episode(env: LiberoEnv, expert: LiberoExpert, init_state: Optional[int], *,
                          action_noise: float = 0.0, action_noise_correlation: float = 0.0,
                          rng: Optional[np.random.Generator] = None, seed: Optional[int] = None,
                          exchange_layout: bool = False, redraw_fixtures: bool = False,
                          render: bool = True) -> Optional[dict]:
    """One expert episode from `init_state` (None: a scene sampled from `seed`), as arrays with one
    row per control step (None if the expert failed). The simulation runs without cameras (far
    cheaper); with render=True the frames are rendered afterwards by replaying the saved MuJoCo
    states (`render_libero_frames`), which gives the same pictures as live rendering.

    action_noise: Gaussian noise (in action units) added to the executed translation/rotation, while
    the expert's own action is recorded: the data then shows recoveries from slightly-off states.
    action_noise_correlation: c in n_t = c * n_(t-1) + N(0, action_noise^2): 0 is independent noise
    per step; near 1 the noise drifts, so the arm wanders off course for a while and the expert
    brings it back (the demo env's pushes: docs/experiments/2026-12-01-demo-recipe.md).
    exchange_layout: start from the scene with the goal's target and another object exchanged
    (LiberoEnv.reset; sim/layout_exchange.py). redraw_fixtures: a sampled scene's objects on a
    second draw of the fixtures, as evaluation replays a benchmark state (LiberoEnv.reset).
    """
    rng = rng or np.random.default_rng()
    noise = np.zeros(6)
    obs = env.reset(init_state, seed=seed, exchange_layout=exchange_layout, redraw_fixtures=redraw_fixtures)
    fixture_poses = env.fixture_poses()  # [F, 7]: drawn by the reset, not held by the saved states
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
            noise = action_noise_correlation * noise + rng.normal(0.0, action_noise, size=6)
            executed[:6] += noise
        obs, _ = env.step(executed)
    if not env.success:
        return None
    out = {k: np.stack(v) for k, v in rows.items()}
    out["eef_axis_angle"] = np.stack([quat_to_axis_angle(q) for q in out["eef_quat"]])
    out["instruction"] = env.instruction
    out["task"], out["init_state"] = env.task.task_id, init_state
    out["exchanged"] = "<->".join(env.exchanged) if env.exchanged else ""
    out["fixture_poses"] = fixture_poses
    if render:
        out.update(render_libero_frames(env, out["sim_state"], fixture_poses=fixture_poses))
    return out


def render_libero_frames(env: LiberoEnv, sim_states: np.ndarray, geometry: bool = False,
                         fixture_poses: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """Both cameras at each saved MuJoCo state, at the env's camera size: {key: uint8 [T, S, S, 3]};
    with geometry, also each camera's depth [T, S, S] (metres) and parameters [T, 4] / [T, 12].
    fixture_poses: where the episode's fixtures stood (LiberoEnv.fixture_poses after its reset)."""
    if fixture_poses is not None:
        env.set_fixture_poses(fixture_poses)
    renders = [env.render_state(state, geometry) for state in sim_states]
    return {key: np.stack([r[key] for r in renders]) for key in renders[0]}


# The LeRobot LIBERO datasets label their frames 10 fps although each row is one 20 Hz control step
# (OpenVLA's regenerated demos, every step kept); we write the same label and the same one row per
# control step, so a policy trained on either executes its actions at the simulator's 20 Hz.
LEROBOT_FPS = 10
# meta/info.json's description of the geometry features (vggt_vla/data/geometry.py).
GEOMETRY_INFO = {"depth": "uint16 PNG, millimetres along the optical axis, 0 = none",
                 "intrinsics": "fx, fy, cx, cy in pixels of the stored image (fx < 0: stored mirrored)",
                 "extrinsics": "camera-from-base [R | t] row-major, OpenCV axes (x right, y down, z forward)",
                 "base_frame": "robot0_base"}
INIT_STATES = ("sampled", "benchmark")
# expert_success.json's mark of a generation whose frames show each episode's fixtures where its
# reset put them (LiberoEnv.fixture_poses). A generation without it drew them where the render
# worker's last reset put them. Not a setting: --rerender renders such a generation again.
FIXTURES_AS_SIMULATED = "fixtures_as_simulated"

_LIBERO_WORKER: dict = {}


def _libero_worker_init(settings: dict) -> None:
    _LIBERO_WORKER.clear()
    _LIBERO_WORKER.update(settings)


def _worker_env(task: int) -> LiberoEnv:
    s = _LIBERO_WORKER
    return cached_env(s["suite"], task, camera_size=s["image_size"], cameras=False, fast_render=s["fast_render"],
                      max_mesh_faces=s["max_mesh_faces"])


def _simulate_job(job: tuple[Episode, str]) -> bool:
    """Run the expert on one episode and save it (arrays, no frames) to `path`: the unit of resume."""
    episode, path = job
    s = _LIBERO_WORKER
    env = _worker_env(episode.task)
    if s.get("expert_env") is not env:
        s["expert"], s["expert_env"] = LiberoExpert(env), env
    exchange = chosen_for_exchange(episode.seed, s["layout_exchange"])
    demo = record_libero_episode(env, s["expert"], episode.init_state, action_noise=s["action_noise"],
                                 action_noise_correlation=s["action_noise_correlation"],
                                 rng=np.random.default_rng(episode.seed), seed=episode.seed,
                                 exchange_layout=exchange, redraw_fixtures=s["redraw_fixtures"], render=False)
    arrays = {"success": np.array(demo is not None), "task": np.array(episode.task),
              "exchanged": np.array(bool(exchange and env.exchanged))}
    if demo is not None:
        arrays.update({k: v for k, v in demo.items() if isinstance(v, np.ndarray)})
        arrays["instruction"] = np.array(demo["instruction"])
        arrays["exchanged_objects"] = np.array(demo["exchanged"])
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # a killed run leaves no half-written episode behind
    return demo is not None


def _render_job(job: tuple[Episode, str]) -> dict:
    """A saved successful episode with its camera frames rendered, its fixtures where they stood."""
    episode, path = job
    with np.load(path) as f:
        demo = {k: f[k] for k in f.files}
    demo["instruction"], demo["task"] = str(demo["instruction"]), episode.task
    env = _worker_env(episode.task)
    if "fixture_poses" not in demo:
        # An episode saved without its poses: the same seeded reset draws them again, unless the
        # task's reset samples a drawer or a knob, whose draws depended on the resets before it in
        # the simulating worker (LiberoEnv._reset_scene).
        if env.has_property_samplers:
            raise ValueError(f"{path} holds no fixture poses, and its task's scene cannot be drawn again from "
                             f"its seed (its drawer/knob samplers made each reset depend on the ones before "
                             f"it): its frames cannot be rendered as simulated. Delete "
                             f"{Path(path).parent}/task{episode.task:02d}_*.npz and run the same command again "
                             f"to simulate that task anew (the other tasks' episodes are kept)")
        env.reset(episode.init_state, seed=episode.seed, redraw_fixtures=_LIBERO_WORKER["redraw_fixtures"])
        demo["fixture_poses"] = env.fixture_poses()
    demo.update(render_libero_frames(env, demo["sim_state"], _LIBERO_WORKER["geometry"], demo["fixture_poses"]))
    return demo


def generate_libero_demos(out: str, *, suite: str = "libero_spatial", tasks: Optional[list[int]] = None,
                          episodes_per_task: int = 50, fmt: str = "lerobot", image_size: Optional[int] = None,
                          fast_render: bool = False, max_mesh_faces: Optional[int] = None,
                          action_noise: float = 0.0, action_noise_correlation: float = 0.0,
                          layout_exchange: float = 0.0, redraw_fixtures: bool = False, workers: int = 1,
                          seed: Optional[int] = None, init_states: str = "sampled", overwrite: bool = False,
                          geometry: bool = False, rerender: bool = False, progress: bool = True) -> dict:
    """Run the expert on `episodes_per_task` scenes of each task, keep the episodes it solved and
    write them under `out`: a LeRobot v3.0 dataset (out/lerobot, fmt "lerobot"), LIBERO HDF5 files
    (out/libero_hdf5, one <task>_demo.hdf5 per task, fmt "libero_hdf5") or both.

    init_states: "sampled" (default) starts from new scenes drawn by LIBERO's placement sampler
    from seeds DEMO_SEED + 1000 t + k (`seed` overrides the base), so evaluation on the
    benchmark's fixed initial states tests scenes the policy never saw; "benchmark" starts from
    the fixed initial states 0..N-1 themselves (at most 50), as evaluation does.

    Resumable: each expert episode is saved to out/episodes/ as it finishes, so a run interrupted
    in the simulation stage continues where it stopped when called again with the same settings
    (other settings are refused; overwrite=True starts over). Rendering and writing then run
    from the saved episodes. Returns the expert's success per task, also written to
    out/expert_success.json, which marks the generation complete: called again, it returns that.

    fast_render, max_mesh_faces: cheaper rendering (vggt_vla/sim/libero.py, sim/light_meshes.py);
    recorded with the data, and evaluation must render the same way.

    layout_exchange: the fraction of scenes (drawn per episode seed) in which the goal's target and
    another object exchange places (sim/layout_exchange.py): layouts LIBERO's sampler never draws.
    The summary counts them per task, and how many the expert solved.

    redraw_fixtures: start each sampled scene as evaluation starts a benchmark state, its objects on
    a second draw of the fixtures (LiberoEnv.reset), so that what rests in or on a fixture (the
    bowl in the cabinet's drawer) is off-centre as in the benchmark's states.

    geometry: also record each camera's depth and parameters (vggt_vla/data/geometry.py), from the
    same render pass. It is a rendering setting: a complete generation rendered otherwise is
    refused unless rerender=True, which renders the datasets again from the saved episodes (no new
    simulation) and replaces out/lerobot and out/libero_hdf5.
    """
    from tqdm import tqdm

    if fmt not in ("lerobot", "libero_hdf5", "both"):
        raise ValueError(f"format {fmt!r}: choose lerobot, libero_hdf5 or both")
    if init_states not in INIT_STATES:
        raise ValueError(f"init_states {init_states!r}: choose from {list(INIT_STATES)}")
    if action_noise < 0 or not 0 <= action_noise_correlation < 1:
        raise ValueError(f"action_noise {action_noise} must be >= 0 and action_noise_correlation "
                         f"{action_noise_correlation} in [0, 1)")
    if not 0 <= layout_exchange <= 1:
        raise ValueError(f"layout_exchange {layout_exchange} is a fraction of the scenes: give a value in [0, 1]")
    if redraw_fixtures and init_states != "sampled":
        raise ValueError("redraw_fixtures applies to sampled scenes; the benchmark's states are replayed on a "
                         "fixture draw of their own already")
    check_max_mesh_faces(max_mesh_faces)
    size = image_size or (128 if fmt == "libero_hdf5" else 256)  # each format's original resolution
    if init_states == "sampled":
        seed = DEMO_SEED if seed is None else seed
        jobs = sampled_episodes(suite, tasks, episodes_per_task, seed)
    else:
        seed = 0 if seed is None else seed  # the same episodes (initial states, seeds) as closed-loop evaluation with the same seed
        jobs = libero_episodes(EnvOptions(suite=suite), tasks, episodes_per_task, seed)
    tasks = list(dict.fromkeys(job.task for job in jobs))
    infos = {t: load_task(suite, t) for t in tasks}
    versions = simulator_versions()  # physics and rendering differ between MuJoCo releases
    settings = {"suite": suite, "tasks": tasks, "episodes_per_task": episodes_per_task, "format": fmt,
                "image_size": size, "fast_render": fast_render, "max_mesh_faces": max_mesh_faces,
                "action_noise": action_noise, "action_noise_correlation": action_noise_correlation,
                "layout_exchange": layout_exchange, "redraw_fixtures": redraw_fixtures,
                "init_states": init_states, "seed": seed, "expert_revision": EXPERT_REVISION,
                "simulator_versions": versions}
    root = Path(out)
    done_file = root / "expert_success.json"
    recorded = _claim_libero_output(root, settings, overwrite)
    if done_file.exists():
        done = json.loads(done_file.read_text())
        if bool(done.get("geometry", False)) == geometry and not rerender:
            if not done.get(FIXTURES_AS_SIMULATED):
                print(f"warning: {root}'s frames were rendered without the fixtures' recorded poses: the "
                      f"cabinet and stove are drawn up to ~3 cm / 4 degrees off "
                      f"where each episode had them, and what rests on them off its drawer or top. Pass "
                      f"--rerender to render them again from the saved episodes (no new simulation).",
                      file=sys.stderr)
            return done
        if not rerender:
            have = "with" if done.get("geometry") else "without"
            raise FileExistsError(f"{root} holds datasets rendered {have} geometry; pass --rerender to render them "
                                  f"again from its saved episodes (no new simulation), or another --out")
        done_file.unlink()  # incomplete from here until the new datasets are written
    paths = {job: recorded / f"task{job.task:02d}_seed{job.seed}.npz" for job in jobs}

    # 1. Simulate (resumable): the expert, without cameras, each episode saved as it ends.
    todo = [(job, str(paths[job])) for job in jobs if not paths[job].exists()]
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="expert episodes", disable=not progress,
               dynamic_ncols=True, mininterval=0.2 if sys.stderr.isatty() else 30)
    worker_settings = {"suite": suite, "image_size": size, "fast_render": fast_render,
                       "max_mesh_faces": max_mesh_faces, "action_noise": action_noise,
                       "action_noise_correlation": action_noise_correlation, "layout_exchange": layout_exchange,
                       "redraw_fixtures": redraw_fixtures,
                       "geometry": geometry}
    for _ in map_jobs(_simulate_job, todo, workers, _libero_worker_init, (worker_settings,)):
        bar.update(1)
    bar.close()
    simulate_s = time.perf_counter() - start
    solved, exchanged = {}, {}
    for job in jobs:
        with np.load(paths[job]) as f:
            solved[job] = bool(f["success"])
            exchanged[job] = bool(f["exchanged"]) if "exchanged" in f.files else False
    results = {t: [solved[job] for job in jobs if job.task == t] for t in tasks}
    kept = [(job, str(paths[job])) for job in jobs if solved[job]]
    if not kept:
        raise RuntimeError("the expert solved no episode; nothing to write")

    # 2. Render the kept episodes from their saved states and write the datasets.
    start = time.perf_counter()
    writer = None
    if fmt in ("lerobot", "both"):
        writer = LeRobotWriter(root / "lerobot", fps=LEROBOT_FPS,
                               features=episode_features(size, LIBERO_STATE_NAMES, geometry=geometry),
                               version="v3.0", robot_type="panda", overwrite=True,
                               extra_info={"simulator_versions": versions, "fast_render": fast_render,
                                           "max_mesh_faces": max_mesh_faces,
                                           "libero_generation": settings,
                                           **({"geometry": GEOMETRY_INFO} if geometry else {})})
    h5: dict[int, LiberoHDF5Writer] = {}
    bar = tqdm(total=len(kept), desc="render + write", disable=not progress, dynamic_ncols=True,
               mininterval=0.2 if sys.stderr.isatty() else 30)
    for demo in map_jobs(_render_job, kept, workers, _libero_worker_init, (worker_settings,)):
        task = demo["task"]
        if writer is not None:
            frames = {key: demo[key] for key in LIBERO_CAMERAS}
            frames[STATE_KEY] = demo["state"].astype(np.float32)
            frames["action"] = demo["action"].astype(np.float32)
            if geometry:
                frames.update(geometry_columns(demo))
            writer.add_episode(frames, task=demo["instruction"])
        if fmt in ("libero_hdf5", "both"):
            if task not in h5:
                info = infos[task]
                h5[task] = LiberoHDF5Writer(root / "libero_hdf5" / f"{info.name}_demo.hdf5",
                                            instruction=info.instruction, bddl_file=info.bddl_file, overwrite=True,
                                            extra_attrs={"env_name": suite, "fast_render": int(fast_render),
                                                         "max_mesh_faces": int(max_mesh_faces or 0),
                                                         "generated_by": "vggt_vla scripted expert",
                                                         "simulator_versions": json.dumps(versions)})
            cams = list(LIBERO_CAMERAS)
            robot_states = np.concatenate([demo["gripper"], demo["eef_pos"], demo["eef_quat"]], axis=1)
            extra = {}
            if geometry:
                for cam, name in zip(cams, LiberoHDF5Writer.GEOMETRY_CAMERAS):
                    extra.update({f"{name}_depth": demo[depth_key(cam)],
                                  f"{name}_intrinsics": demo[camera_intrinsics_key(cam)],
                                  f"{name}_extrinsics": demo[camera_extrinsics_key(cam)]})
            h5[task].add_demo(actions=demo["action"], states=demo["sim_state"], robot_states=robot_states,
                              agentview_rgb=demo[cams[0]], eye_in_hand_rgb=demo[cams[1]], ee_pos=demo["eef_pos"],
                              ee_ori=demo["eef_axis_angle"], gripper_states=demo["gripper"],
                              joint_states=demo["joints"], **extra)
        bar.update(1)
    bar.close()
    for w in h5.values():
        w.close()
    if writer is not None:
        writer.finalize()
    summary = {**settings, "geometry": geometry, FIXTURES_AS_SIMULATED: True, "episodes": len(jobs), "kept": len(kept),
               "simulate_s": round(simulate_s, 1), "render_write_s": round(time.perf_counter() - start, 1),
               "per_task": [{"task": t, "instruction": infos[t].instruction, "successes": sum(results[t]),
                             "episodes": len(results[t]), "success_rate": sum(results[t]) / max(1, len(results[t])),
                             "exchanged_episodes": sum(exchanged[job] for job in jobs if job.task == t),
                             "exchanged_successes": sum(exchanged[job] and solved[job] for job in jobs
                                                        if job.task == t)}
                            for t in tasks]}
    summary["wall_time_s"] = round(summary["simulate_s"] + summary["render_write_s"], 1)
    tmp = done_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(done_file)  # last: its presence means the datasets are complete
    return summary


def _claim_libero_output(root: Path, settings: dict, overwrite: bool) -> Path:
    """out/episodes, after checking that `root` is new, or holds a generation with these settings
    (to resume or return), or overwrite says to start over. Returns the episodes folder."""
    recorded = root / "episodes"
    settings_file = recorded / "settings.json"
    if overwrite and root.exists():
        shutil.rmtree(root)
    if settings_file.exists():
        have = json.loads(settings_file.read_text())
        have = {**SETTINGS_ADDED_LATER, **have}  # generations written before a setting existed
        diff = [f"{k}: {have.get(k)!r} there, {v!r} asked" for k, v in settings.items() if have.get(k) != v]
        if diff:
            raise FileExistsError(f"{root} holds a generation with other settings ({'; '.join(diff)}); pass "
                                  f"--overwrite to start over, or another --out")
        return recorded
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and is not a LIBERO demo generation; pass --overwrite or another --out")
    recorded.mkdir(parents=True)
    settings_file.write_text(json.dumps(settings, indent=2))
    return recorded


def geometry_columns(demo: dict) -> dict[str, np.ndarray]:
    """A rendered episode's geometry arrays in the dataset's storage types (depth as uint16 mm)."""
    out = {}
    for key in CAMERA_KEYS:
        out[depth_key(key)] = encode_depth(demo[depth_key(key)])
        out[camera_intrinsics_key(key)] = demo[camera_intrinsics_key(key)].astype(np.float32)
        out[camera_extrinsics_key(key)] = demo[camera_extrinsics_key(key)].astype(np.float32)
    return out
