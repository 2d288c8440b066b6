"""Recording simulator episodes into datasets: the embedded demo env and LIBERO, one place.

    python scripts/make_demo_dataset.py --out data/demo                    # make_demo_dataset
    python scripts/generate_libero_demos.py --tasks 0,1 --out data/ls01   # generate_libero_demos
    python scripts/train_vla.py --config demo --set data.live_expert=true  # LiveDemoFrames (no disk)

It sits above vggt_vla.data (the writers) and vggt_vla.sim (the envs and experts), which never
import each other. Both recorders run a scripted expert, keep the episodes it solved, record the
expert's action while executing a noisy one (so the data covers states slightly off the expert's
path), and write the LIBERO feature layout (`episode_features`). To record another simulator:
a `record_<sim>_episode` returning arrays per feature, and a loop that hands them to a writer.

The demo dataset is LIBERO-shaped: two 128x128 cameras (`observation.images.image` agent view,
`observation.images.wrist_image` following the gripper), 8-D `observation.state`, 7-D `action` in
[-1, 1], 10 fps, one instruction per episode. Demo episode i is the env reset with seed `seed + i`
and ends when the instruction is carried out.

LIBERO demonstrations start from scenes LIBERO's placement sampler draws from seeds evaluation
never uses (or, on request, from the benchmark's fixed initial states). The simulation runs
without cameras (far cheaper) and saves each episode as it ends (a generation resumes);
the kept episodes' frames are rendered afterwards by replaying their saved MuJoCo states. For
another suite nothing changes here as long as the expert solves its tasks
(vggt_vla/sim/libero_expert.py reads each task's goal from its BDDL). Written as LeRobot v3.0
and/or LIBERO HDF5.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from vggt_vla.constants import (ACTION_KEY, ACTION_NAMES, CAMERA_KEYS, STATE_KEY, camera_extrinsics_key,
                                camera_intrinsics_key, depth_key)
from vggt_vla.data.dataset import chunk_rows
from vggt_vla.data.geometry import encode_depth
from vggt_vla.data.libero_hdf5 import LiberoHDF5Writer
from vggt_vla.data.writer import LeRobotWriter, available_av1_encoder
from vggt_vla.parallel import map_jobs
from vggt_vla.sim.demo_env import STATE_NAMES as DEMO_STATE_NAMES
from vggt_vla.sim.demo_env import TASK_TYPES, DemoEnv, scripted_action
from vggt_vla.sim.libero import CAMERAS as LIBERO_CAMERAS
from vggt_vla.sim.libero import STATE_NAMES as LIBERO_STATE_NAMES
from vggt_vla.sim.libero import (DEMO_SEED, LiberoEnv, cached_env, libero_episodes, load_task, quat_to_axis_angle,
                                 sampled_episodes, simulator_versions)
from vggt_vla.sim.libero_expert import LiberoExpert
from vggt_vla.sim.protocol import EnvOptions, Episode


def episode_features(image_size: int, state_names: Sequence[str], video: bool = False,
                     geometry: bool = False) -> dict:
    """The LeRobot feature schema both recorders write: the two cameras (PNG frames in parquet, or
    AV1 video), the 8-D state and the 7-D action (lerobot/libero_*_image's layout); with geometry,
    each camera's depth map and parameters too (vggt_vla/data/geometry.py)."""
    cam = {"dtype": "video" if video else "image", "shape": [image_size, image_size, 3],
           "names": ["height", "width", "channels"]}
    features = {**{key: dict(cam) for key in CAMERA_KEYS},
                STATE_KEY: {"dtype": "float32", "shape": [len(state_names)], "names": list(state_names)},
                ACTION_KEY: {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": ACTION_NAMES}}
    if geometry:
        for key in CAMERA_KEYS:
            features[depth_key(key)] = {"dtype": "image", "shape": [image_size, image_size, 1],
                                        "names": ["height", "width", "depth_mm"]}
            features[camera_intrinsics_key(key)] = {"dtype": "float32", "shape": [4],
                                                    "names": ["fx", "fy", "cx", "cy"]}
            features[camera_extrinsics_key(key)] = {"dtype": "float32", "shape": [12],
                                                    "names": [f"cam_from_base_{r}{c}" for r in range(3)
                                                              for c in range(4)]}
    return features


def geometry_columns(demo: dict) -> dict[str, np.ndarray]:
    """A rendered episode's geometry arrays in the dataset's storage types (depth as uint16 mm)."""
    out = {}
    for key in CAMERA_KEYS:
        out[depth_key(key)] = encode_depth(demo[depth_key(key)])
        out[camera_intrinsics_key(key)] = demo[camera_intrinsics_key(key)].astype(np.float32)
        out[camera_extrinsics_key(key)] = demo[camera_extrinsics_key(key)].astype(np.float32)
    return out


# ---------------------------------------------------------------------------------------------
# The embedded demo
# ---------------------------------------------------------------------------------------------

DEMO_FPS = 10
# Episodes of the demo dataset. The recipe trains on new scenes (data.live_expert) and takes its
# validation episodes and statistics from these; trained on directly, a few hundred episodes are
# memorised (docs/experiments/2026-12-01-demo-recipe.md).
DEFAULT_EPISODES = 1000
# The executed action is the expert's plus noise n_t = CORRELATION * n_(t-1) + N(0, NOISE^2); the
# expert's own action is recorded, so the data shows recoveries. The recorded dataset uses
# independent noise (0): on recorded episodes, correlated noise did not hold up over two training
# seeds. The recipe's live scenes use correlated noise (data.live_noise_correlation: 0.8 in
# configs/train_demo.yaml), where it does (docs/experiments/2026-12-01-demo-recipe.md).
DEMO_NOISE = 0.3
DEMO_NOISE_CORRELATION = 0.0


def demo_expert_path(env: DemoEnv, seed: int, rng: np.random.Generator, noise: float,
                     noise_correlation: float = 0.0) -> Optional[dict]:
    """The scripted expert on the scene of `seed`, executing its action plus noise, nothing rendered:
    per step the scene's snapshot [T, 1 + objects, 2] (DemoEnv.snapshot), the state [T, 8] and the
    expert's own action [T, 7]. None if the expert failed (the tests rule that out)."""
    env.draw_scene(seed)
    drift = np.zeros(2)
    rows: dict[str, list] = {"snapshot": [], STATE_KEY: [], ACTION_KEY: []}
    while not env.done:
        action = scripted_action(env)
        rows["snapshot"].append(env.snapshot())
        rows[STATE_KEY].append(env.state())
        rows[ACTION_KEY].append(action)
        executed = action.copy()
        if noise > 0:
            drift = noise_correlation * drift + rng.normal(0.0, noise, size=2)
            executed[:2] += drift
        env.move(executed)  # which clips it to [-1, 1]
    if not env.success:
        return None
    return {k: np.stack(v) for k, v in rows.items()}


def render_demo_frame(env: DemoEnv, snapshot: np.ndarray) -> dict[str, np.ndarray]:
    """Both cameras of `env`'s scene as `snapshot` saw it: {key: uint8 [S, S, 3]}."""
    env.restore(snapshot)
    obs = env.observation()
    return {k: obs[k] for k in CAMERA_KEYS}


def record_demo_episode(env: DemoEnv, seed: int, rng: np.random.Generator, noise: float,
                        noise_correlation: float = 0.0) -> Optional[dict]:
    """One scripted episode as arrays, every frame rendered (None if the expert failed)."""
    path = demo_expert_path(env, seed, rng, noise, noise_correlation)
    if path is None:
        return None
    frames = [render_demo_frame(env, snap) for snap in path.pop("snapshot")]
    return {**{k: np.stack([f[k] for f in frames]) for k in CAMERA_KEYS}, **path}


def make_demo_dataset(out: Union[str, Path], *, num_episodes: int = DEFAULT_EPISODES, seed: int = 0,
                      video: bool = False, video_codec: Optional[str] = None, noise: float = DEMO_NOISE,
                      noise_correlation: float = DEMO_NOISE_CORRELATION, image_size: int = 128,
                      num_objects: int = 3, task_types: Sequence[str] = TASK_TYPES, overwrite: bool = False,
                      progress: bool = True) -> Path:
    """Write the demo dataset to `out` and return its root. meta/info.json records the settings
    under "demo_recording" (see demo_recipe_mismatch)."""
    from tqdm import tqdm

    if num_episodes < 1:  # before the writer creates `out`: a refused call leaves nothing behind
        raise ValueError(f"num_episodes={num_episodes}: a dataset needs at least 1 episode")
    codec = video_codec
    if video and codec is None:
        codec = available_av1_encoder()
        if codec is None:
            raise RuntimeError("this PyAV build has no AV1 encoder; pass video_codec='libx264'")
    settings = {"episodes": num_episodes, "seed": seed, "noise": noise, "noise_correlation": noise_correlation,
                "image_size": image_size, "num_objects": num_objects, "task_types": list(task_types)}
    writer = LeRobotWriter(out, fps=DEMO_FPS, features=episode_features(image_size, DEMO_STATE_NAMES, video),
                           version="v3.0", robot_type="demo_gripper", video_codec=codec or "libsvtav1",
                           overwrite=overwrite, extra_info={"demo_recording": settings})
    env = DemoEnv(image_size=image_size, num_objects=num_objects, task_types=task_types)
    rng = np.random.default_rng(seed)
    failed = 0
    for i in tqdm(range(num_episodes), desc="demo episodes", disable=not progress):
        episode = record_demo_episode(env, seed + i, rng, noise, noise_correlation)
        if episode is None:
            failed += 1
            continue
        writer.add_episode(episode, task=env.instruction)
    if failed:
        print(f"warning: the scripted expert failed {failed} of {num_episodes} episodes; they were skipped")
    return writer.finalize()


# Live demonstrations (data.live_expert): scenes the dataset does not have, simulated when training
# starts. The scenes of a run with train.seed s come from the random stream (LIVE_SEED, s), so a
# resumed run sees exactly the frames the uninterrupted one would have, and their seeds (63-bit
# draws) are not the small integers the datasets (0..N-1) and evaluation (eval.py --seed S) use.
LIVE_SEED = 4_242


class LiveDemoFrames(torch.utils.data.Dataset):
    """Training items (FrameDataset's format) from new scripted-expert episodes of the demo env.

    On construction the expert, with action noise on what it executes, solves new scenes (simulated only,
    nothing rendered) until they hold `length` items: from each episode, every
    `frame_stride`-th frame from a random offset. Frames thus come from episodes in proportion to
    their length, as from a recorded dataset, and a scene gives ~27 / frame_stride items, each used
    once (the sampler spreads them over the run). An item is rendered when it is loaded.
    A run thus sees thousands of scenes, each frame once, where a recorded dataset of 1,000
    episodes would show each of its scenes dozens of times and be learnt by heart
    (docs/experiments/2026-12-01-demo-recipe.md).

    length: items per epoch (the trainer asks for one epoch of max_steps batches).
    normalizer: the recorded dataset's statistics, so live and recorded frames share their units.
    noise, noise_correlation: n_t = noise_correlation * n_(t-1) + N(0, noise^2) is added to the
    executed (dx, dy); the expert's own action is recorded (data.live_action_noise / _correlation).
    shared_colour: the fraction of scenes in which another object has the target's colour (only
    the shape word tells them apart); None keeps the env's own mix (2 in 7). A scene of the drawn
    kind is found by redrawing it (~30 us a draw).
    """

    def __init__(self, length: int, *, chunk_size: int, transform, normalizer, seed: int = 0,
                 image_size: int = 128, noise: float = DEMO_NOISE,
                 noise_correlation: float = DEMO_NOISE_CORRELATION, shared_colour: Optional[float] = None,
                 frame_stride: int = 4):
        if frame_stride < 1:
            raise ValueError(f"frame_stride={frame_stride} must be >= 1")
        self.length = int(length)
        self.chunk_size = int(chunk_size)
        self.transform = transform
        self.normalizer = normalizer
        self.shared_colour = shared_colour
        self.env = DemoEnv(image_size=image_size)
        self.scenes: list[dict] = []  # per episode: seed, instruction, snapshot, normalised state/action
        self.items: list[tuple[int, int]] = []  # (scene, frame) per item
        rng = np.random.default_rng((LIVE_SEED, int(seed)))
        while len(self.items) < self.length:
            scene_seed = self._scene_seed(rng)
            path = demo_expert_path(self.env, scene_seed, rng, noise, noise_correlation)
            if path is None:
                continue
            steps = len(path[ACTION_KEY])
            first = int(rng.integers(frame_stride))
            self.items += [(len(self.scenes), t) for t in range(first, steps, frame_stride)]
            self.scenes.append({
                "seed": scene_seed, "instruction": self.env.instruction, "snapshot": path["snapshot"],
                STATE_KEY: normalizer.normalize(STATE_KEY, path[STATE_KEY]).astype(np.float32),  # [E, S]
                ACTION_KEY: normalizer.normalize(ACTION_KEY, path[ACTION_KEY]).astype(np.float32),  # [E, A]
            })
        del self.items[self.length:]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        scene_index, t = self.items[i]
        scene = self.scenes[scene_index]
        self.env.draw_scene(scene["seed"])
        frame = render_demo_frame(self.env, scene["snapshot"][t])
        state, action = scene[STATE_KEY], scene[ACTION_KEY]  # [E, S], [E, A]
        chunk, pad = chunk_rows(t, len(action), self.chunk_size)  # [T], [T]
        return {
            "images": self.transform.cameras([frame[k] for k in CAMERA_KEYS]),  # [V, 3, S, S]
            "instruction": scene["instruction"],
            "state": torch.from_numpy(state[t].copy()),  # [S]
            "actions": torch.from_numpy(action[chunk]),  # [T, A]
            "action_pad_mask": torch.from_numpy(pad),  # [T] bool, True = padded
            "goal_state": torch.from_numpy(state[-1].copy()),  # [S]: where the episode ends
        }

    def _scene_seed(self, rng: np.random.Generator) -> int:
        """A new scene's seed: any scene, or one of the kind (shared target colour or not) drawn
        with probability shared_colour."""
        if self.shared_colour is None:
            return int(rng.integers(1 << 62))
        shared = bool(rng.random() < self.shared_colour)
        while True:
            seed = int(rng.integers(1 << 62))
            self.env.draw_scene(seed)
            if self.env.target_colour_shared() == shared:
                return seed


def demo_recipe_mismatch(root: Union[str, Path]) -> Optional[str]:
    """None if the dataset at root was written with the demo recipe's settings (DEFAULT_EPISODES,
    DEMO_NOISE, DEMO_NOISE_CORRELATION, the default scene), "missing" if there is none, else what
    differs. quick_start.sh trains only on a matching dataset and never rewrites another."""
    info_path = Path(root) / "meta" / "info.json"
    if not info_path.exists():
        return "missing"
    info = json.loads(info_path.read_text())
    have = info.get("demo_recording")
    if have is None:  # written before the settings were recorded, with today's defaults but the size
        episodes = info.get("total_episodes")
        return None if episodes == DEFAULT_EPISODES else f"episodes {episodes} (the recipe: {DEFAULT_EPISODES})"
    want = {"episodes": DEFAULT_EPISODES, "noise": DEMO_NOISE, "noise_correlation": DEMO_NOISE_CORRELATION,
            "num_objects": 3, "task_types": list(TASK_TYPES)}
    diff = [f"{k} {have.get(k)} (the recipe: {v})" for k, v in want.items() if have.get(k) != v]
    return "; ".join(diff) or None


# ---------------------------------------------------------------------------------------------
# LIBERO (the simulator itself, requirements-sim.txt, is imported when an env is built)
# ---------------------------------------------------------------------------------------------

def record_libero_episode(env: LiberoEnv, expert: LiberoExpert, init_state: Optional[int], *,
                          action_noise: float = 0.0, rng: Optional[np.random.Generator] = None,
                          seed: Optional[int] = None, render: bool = True) -> Optional[dict]:
    """One expert episode from `init_state` (None: a scene sampled from `seed`), as arrays with one
    row per control step (None if the expert failed). The simulation runs without cameras (far
    cheaper); with render=True the frames are rendered afterwards by replaying the saved MuJoCo
    states (`render_libero_frames`), which gives the same pictures as live rendering.

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
    out["instruction"] = env.instruction
    out["task"], out["init_state"] = env.task.task_id, init_state
    if render:
        out.update(render_libero_frames(env, out["sim_state"]))
    return out


def render_libero_frames(env: LiberoEnv, sim_states: np.ndarray, geometry: bool = False) -> dict[str, np.ndarray]:
    """Both cameras at each saved MuJoCo state, at the env's camera size: {key: uint8 [T, S, S, 3]};
    with geometry, also each camera's depth [T, S, S] (metres) and parameters [T, 4] / [T, 12]."""
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

_LIBERO_WORKER: dict = {}


def _libero_worker_init(settings: dict) -> None:
    _LIBERO_WORKER.clear()
    _LIBERO_WORKER.update(settings)


def _worker_env(task: int) -> LiberoEnv:
    s = _LIBERO_WORKER
    return cached_env(s["suite"], task, camera_size=s["image_size"], cameras=False, fast_render=s["fast_render"])


def _simulate_job(job: tuple[Episode, str]) -> bool:
    """Run the expert on one episode and save it (arrays, no frames) to `path`: the unit of resume."""
    episode, path = job
    s = _LIBERO_WORKER
    env = _worker_env(episode.task)
    if s.get("expert_env") is not env:
        s["expert"], s["expert_env"] = LiberoExpert(env), env
    demo = record_libero_episode(env, s["expert"], episode.init_state, action_noise=s["action_noise"],
                                 rng=np.random.default_rng(episode.seed), seed=episode.seed, render=False)
    arrays = {"success": np.array(demo is not None), "task": np.array(episode.task)}
    if demo is not None:
        arrays.update({k: v for k, v in demo.items() if isinstance(v, np.ndarray)})
        arrays["instruction"] = np.array(demo["instruction"])
    tmp = Path(path).with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # a killed run leaves no half-written episode behind
    return demo is not None


def _render_job(job: tuple[int, str]) -> dict:
    """A saved successful episode with its camera frames rendered."""
    task, path = job
    with np.load(path) as f:
        demo = {k: f[k] for k in f.files}
    demo["instruction"], demo["task"] = str(demo["instruction"]), task
    demo.update(render_libero_frames(_worker_env(task), demo["sim_state"], _LIBERO_WORKER["geometry"]))
    return demo


def generate_libero_demos(out: str, *, suite: str = "libero_spatial", tasks: Optional[list[int]] = None,
                          episodes_per_task: int = 50, fmt: str = "lerobot", image_size: Optional[int] = None,
                          fast_render: bool = False, action_noise: float = 0.0, workers: int = 1,
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
                "image_size": size, "fast_render": fast_render, "action_noise": action_noise,
                "init_states": init_states, "seed": seed,
                "simulator_versions": versions}
    root = Path(out)
    done_file = root / "expert_success.json"
    recorded = _claim_libero_output(root, settings, overwrite)
    if done_file.exists():
        done = json.loads(done_file.read_text())
        if bool(done.get("geometry", False)) == geometry and not rerender:
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
    worker_settings = {"suite": suite, "image_size": size, "fast_render": fast_render, "action_noise": action_noise,
                       "geometry": geometry}
    for _ in map_jobs(_simulate_job, todo, workers, _libero_worker_init, (worker_settings,)):
        bar.update(1)
    bar.close()
    simulate_s = time.perf_counter() - start
    solved = {}
    for job in jobs:
        with np.load(paths[job]) as f:
            solved[job] = bool(f["success"])
    results = {t: [solved[job] for job in jobs if job.task == t] for t in tasks}
    kept = [(job.task, str(paths[job])) for job in jobs if solved[job]]
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
    summary = {**settings, "geometry": geometry, "episodes": len(jobs), "kept": len(kept),
               "simulate_s": round(simulate_s, 1), "render_write_s": round(time.perf_counter() - start, 1),
               "per_task": [{"task": t, "instruction": infos[t].instruction, "successes": sum(results[t]),
                             "episodes": len(results[t]), "success_rate": sum(results[t]) / max(1, len(results[t]))}
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
