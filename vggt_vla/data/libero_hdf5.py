"""The original LIBERO release's HDF5 demonstrations: read them as training samples, or write them.

LIBERO ships one robomimic-style HDF5 file per task (`<task_name>_demo.hdf5`):

    data                        attrs: problem_info (JSON with "language_instruction"), env_args, ...
    data/demo_<i>/actions       [T, 7]  float, the 7-D delta end-effector actions
    data/demo_<i>/states        [T, D]  MuJoCo states;  robot_states [T, 9];  rewards, dones [T]
    data/demo_<i>/obs/agentview_rgb, eye_in_hand_rgb   [T, H, W, 3] uint8 (128 x 128 in the release)
    data/demo_<i>/obs/ee_pos [T, 3], ee_ori [T, 3] (axis-angle), ee_states [T, 6],
                      gripper_states [T, 2], joint_states [T, 7]

Read: select it in a config and train as usual; items are exactly those of the LeRobot reader:

    data:
      dataset_format: libero_hdf5
      dataset_root: /path/to/libero_spatial      # every *.hdf5 below it; or hdf5_files: [a.hdf5, ...]

The state is ee_pos + ee_ori + gripper_states (the 8-D state of the LeRobot LIBERO datasets), the
action `actions`, the instruction `language_instruction` from `problem_info`, and the cameras
`agentview_rgb` -> `observation.images.image`, `eye_in_hand_rgb` -> `observation.images.wrist_image`
(`data.rename_map` maps others, e.g. {"agentview_rgb": "observation.images.image"}). The release
stores raw MuJoCo renders, upside down; the reader rotates them 180 degrees into the orientation of
the LeRobot LIBERO datasets and of `vggt_vla.sim.libero` (see that module), so one policy config
(`data.flip_images: false`) serves both formats and the simulator. Episodes are numbered in file
order (files sorted by name), then demo number. Statistics are computed from the data.

Write: `LiberoHDF5Writer` (used by scripts/generate_libero_demos.py --format libero_hdf5).

Needs h5py (`pip install -r requirements-sim.txt`, or just `pip install h5py`).
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vggt_vla.constants import AGENT_VIEW, WRIST_VIEW

from .source import SourceColumns
from .meta import DatasetError
from .stats import Stats, vector_stats

# Project camera key -> the release's observation key.
CAMERA_MAP = {AGENT_VIEW: "agentview_rgb", WRIST_VIEW: "eye_in_hand_rgb"}
STATE_PARTS = ("ee_pos", "ee_ori", "gripper_states")


def _h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError("reading or writing LIBERO HDF5 files needs h5py: pip install h5py "
                          "(or pip install -r requirements-sim.txt)") from err
    return h5py


def find_hdf5_files(root: Optional[str] = None, files: Optional[Sequence[str]] = None) -> list[Path]:
    """`files` (paths or glob patterns) if given, else every *.hdf5 / *.h5 below `root`; sorted."""
    if files:
        found = []
        for pattern in files:
            matches = sorted(glob.glob(os.path.expanduser(pattern))) if any(c in pattern for c in "*?[") \
                else [os.path.expanduser(pattern)]
            if not matches:
                raise DatasetError(f"data.hdf5_files: {pattern!r} matches no file")
            for m in matches:
                if not Path(m).is_file():
                    raise DatasetError(f"data.hdf5_files: {m!r} is not a file")
            found += matches
        return [Path(p) for p in found]
    if not root:
        raise DatasetError("data.dataset_format=libero_hdf5 needs data.dataset_root (a directory of .hdf5 "
                           "files) or data.hdf5_files")
    base = Path(root).expanduser()
    if base.is_file():
        return [base]
    if not base.is_dir():
        raise DatasetError(f"data.dataset_root={root!r} does not exist")
    paths = sorted(p for p in base.rglob("*") if p.suffix in (".hdf5", ".h5") and p.is_file())
    if not paths:
        raise DatasetError(f"no .hdf5 files under {base}; point data.dataset_root at the folder holding the "
                           f"LIBERO *_demo.hdf5 files (or list them in data.hdf5_files)")
    return paths


def _demo_number(name: str) -> int:
    m = re.fullmatch(r"demo_(\d+)", name)
    return int(m.group(1)) if m else -1


class LiberoHDF5Source(SourceColumns):
    """LIBERO HDF5 files loaded for training: a `Source` (source.py), numeric columns in memory,
    camera frames read on demand. Episodes are numbered 0..E-1 in file order.

    camera_keys / state_key / action_key are the config's names; state_key=None reads no state.
    rename_map: HDF5 observation key -> config camera key, on top of CAMERA_MAP.
    """

    def __init__(self, files: Sequence[str | Path], *, camera_keys: Sequence[str],
                 state_key: Optional[str] = "observation.state", action_key: str = "action",
                 rename_map: Optional[dict[str, str]] = None, progress: bool = True):
        h5py = _h5py()
        from tqdm import tqdm

        self.files = [Path(f) for f in files]
        if not self.files:
            raise DatasetError("no LIBERO HDF5 files given")
        inverse = {v: k for k, v in (rename_map or {}).items()}  # config name -> HDF5 obs key
        self.camera_keys = list(camera_keys)
        self.camera_features = [inverse.get(k, CAMERA_MAP.get(k, k)) for k in self.camera_keys]
        self.state_key, self.action_key = state_key, action_key
        self.state_feature = "+".join(STATE_PARTS) if state_key else None
        self.action_feature = "actions"

        self.tasks: list[str] = []
        self._episodes: list[tuple[int, str]] = []  # (file position, demo group name)
        actions, states, task_index, lengths = [], [], [], []
        for fi, path in enumerate(tqdm(self.files, desc="reading LIBERO HDF5", unit="file",
                                       disable=not progress or len(self.files) < 4)):
            try:
                handle = h5py.File(path, "r")
            except OSError as err:
                raise DatasetError(f"{path} is not a readable HDF5 file: {err}") from err
            with handle as f:
                instruction = self._instruction(f, path)
                if instruction not in self.tasks:
                    self.tasks.append(instruction)
                demos = sorted((k for k in f["data"].keys() if _demo_number(k) >= 0), key=_demo_number)
                if not demos:
                    raise DatasetError(f"{path}: group 'data' holds no demo_<i> groups")
                for name in demos:
                    demo = f["data"][name]
                    a, s = self._columns(demo, path, name)
                    actions.append(a)
                    states.append(s)
                    lengths.append(len(a))
                    task_index.append(np.full(len(a), self.tasks.index(instruction), dtype=np.int64))
                    self._episodes.append((fi, name))
        lengths = np.asarray(lengths, dtype=np.int64)
        self.root = self.files[0].parent if len(self.files) > 1 else self.files[0]
        self.episode_indices = np.arange(len(lengths), dtype=np.int64)  # [E]
        self.action = np.concatenate(actions).astype(np.float32)  # [N, A]
        self.state = np.concatenate(states).astype(np.float32)  # [N, S]
        self.task_index = np.concatenate(task_index)  # [N]
        self.num_rows = len(self.action)
        self.ep_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)  # [E]
        self.ep_end = self.ep_start + lengths  # [E]
        self.row_episode = np.repeat(np.arange(len(lengths)), lengths).astype(np.int64)  # [N]
        self.frame_index = np.arange(self.num_rows) - self.ep_start[self.row_episode]  # [N]
        self._handles: dict[int, object] = {}
        self._pid = os.getpid()

    def episode_position(self, episode_index: int) -> int:
        if not 0 <= episode_index < len(self.episode_indices):
            raise DatasetError(f"episode {episode_index} is not in the dataset "
                               f"(episodes 0..{len(self.episode_indices) - 1})")
        return int(episode_index)

    def identity(self) -> dict:
        return {"dataset": str(self.root.resolve()), "total_frames": int(self.num_rows),
                "codebase_version": "libero_hdf5"}

    # ----------------------------------------------------------------------------------------
    @staticmethod
    def _instruction(f, path: Path) -> str:
        if "data" not in f:
            raise DatasetError(f"{path} has no group 'data'; is it a LIBERO / robomimic demo file?")
        raw = f["data"].attrs.get("problem_info")
        if raw is None:
            raise DatasetError(f"{path}: data.attrs lacks 'problem_info' (a JSON string holding "
                               f"'language_instruction'), so the episodes have no instruction")
        try:
            info = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
            text = info["language_instruction"]
        except (ValueError, KeyError, TypeError) as err:
            raise DatasetError(f"{path}: data.attrs['problem_info'] is not JSON with 'language_instruction' "
                               f"({type(err).__name__}: {err})") from err
        text = " ".join(text) if isinstance(text, list) else str(text)
        return text.strip()

    def _columns(self, demo, path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
        where = f"{path}:data/{name}"
        if "actions" not in demo or "obs" not in demo:
            raise DatasetError(f"{where} lacks 'actions' or 'obs' (has {sorted(demo.keys())})")
        obs = demo["obs"]
        actions = np.asarray(demo["actions"], dtype=np.float64).reshape(len(demo["actions"]), -1)
        for cam in self.camera_features:
            if cam not in obs:
                raise DatasetError(f"{where}/obs has no camera {cam!r} (it has {sorted(obs.keys())}); map one "
                                   f"with data.rename_map, e.g. {{'agentview_rgb': 'observation.images.image'}}")
            if obs[cam].shape[0] != len(actions) or obs[cam].ndim != 4 or obs[cam].shape[-1] != 3:
                raise DatasetError(f"{where}/obs/{cam} has shape {obs[cam].shape}; expected "
                                   f"[{len(actions)}, H, W, 3] uint8")
        if not self.state_key:
            return actions, np.zeros((len(actions), 0))
        missing = [k for k in STATE_PARTS if k not in obs]
        if missing:
            raise DatasetError(f"{where}/obs lacks {missing} for the 8-D state (ee_pos + ee_ori + "
                               f"gripper_states); set model.state_dim: 0 to train without a state")
        state = np.concatenate([np.asarray(obs[k], dtype=np.float64).reshape(len(actions), -1)
                                for k in STATE_PARTS], axis=1)
        return actions, state

    def _file(self, fi: int):
        if os.getpid() != self._pid:  # a forked DataLoader worker: never share HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        if fi not in self._handles:
            self._handles[fi] = _h5py().File(self.files[fi], "r")
        return self._handles[fi]

    def frame(self, cam: int, row: int) -> np.ndarray:
        """Camera `cam` (position in camera_keys) at global row `row`: [H, W, 3] uint8, rotated
        180 degrees from the file (raw render) into the LeRobot LIBERO orientation."""
        ep = int(self.row_episode[row])
        fi, name = self._episodes[ep]
        img = self._file(fi)["data"][name]["obs"][self.camera_features[cam]][int(self.frame_index[row])]
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8)[::-1, ::-1])

    def stats(self, mode: str) -> Stats:
        """State/action statistics under the config's key names, computed over all rows."""
        out = {self.action_key: vector_stats(self.action, quantiles=True)}
        if self.state_key:
            out[self.state_key] = vector_stats(self.state, quantiles=True)
        return out

    def __getstate__(self):  # DataLoader workers started with spawn open their own handles
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}


# ---------------------------------------------------------------------------------- writing

class LiberoHDF5Writer:
    """Writes one task's demos in the release's layout. Images are given in the LeRobot LIBERO
    orientation (what the simulator wrapper returns) and stored as raw renders, like the release.

        w = LiberoHDF5Writer("out/task_demo.hdf5", instruction="pick up ...", problem_name="libero_...",
                             bddl_file="...bddl")
        w.add_demo(actions=a, states=s, robot_states=r, ee_pos=p, ee_ori=o, gripper_states=g,
                   joint_states=j, agentview_rgb=frames, eye_in_hand_rgb=wrist)
        w.close()
    """

    OBS_KEYS = ("agentview_rgb", "eye_in_hand_rgb", "ee_pos", "ee_ori", "gripper_states", "joint_states")
    # Recorded geometry (data/geometry.py), optional: per camera <cam>_depth (metres, float32
    # [T, H, W, 1], robomimic's layout), <cam>_intrinsics [T, 4] and <cam>_extrinsics [T, 12]. Given
    # in the LeRobot orientation like the images; stored, like them, in the raw render orientation
    # (180 degrees), for which the intrinsics become (-fx, -fy, W - cx, H - cy).
    GEOMETRY_CAMERAS = ("agentview", "eye_in_hand")

    def __init__(self, path: str | Path, *, instruction: str, problem_name: str = "libero_tabletop_manipulation",
                 bddl_file: str = "", extra_attrs: Optional[dict] = None, overwrite: bool = False):
        h5py = _h5py()
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists (pass overwrite=True)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.path, "w")
        self.data = self.file.create_group("data")
        self.data.attrs["problem_info"] = json.dumps({"problem_name": problem_name, "domain_name": "robosuite",
                                                      "language_instruction": instruction})
        self.data.attrs["bddl_file_name"] = bddl_file
        self.data.attrs["macros_image_convention"] = "opengl"
        for key, value in (extra_attrs or {}).items():
            self.data.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)
        self.num_demos = 0
        self.total = 0

    def add_demo(self, *, actions, states, robot_states, **obs) -> None:
        missing = sorted(set(self.OBS_KEYS) - set(obs))
        if missing:
            raise ValueError(f"add_demo needs obs arrays {missing}")
        actions = np.asarray(actions, dtype=np.float64)
        n = len(actions)
        group = self.data.create_group(f"demo_{self.num_demos}")
        group.attrs["num_samples"] = n
        group.create_dataset("actions", data=actions)
        group.create_dataset("states", data=np.asarray(states, dtype=np.float64))
        group.create_dataset("robot_states", data=np.asarray(robot_states, dtype=np.float64))
        rewards = np.zeros(n, dtype=np.uint8)
        rewards[-1] = 1  # episodes end on success
        group.create_dataset("rewards", data=rewards)
        group.create_dataset("dones", data=rewards.copy())
        o = group.create_group("obs")
        for key in self.OBS_KEYS:
            value = np.asarray(obs[key])
            if len(value) != n:
                raise ValueError(f"obs {key!r} has {len(value)} rows for {n} actions")
            if key.endswith("_rgb"):  # back to the raw render orientation the release stores
                o.create_dataset(key, data=np.ascontiguousarray(value[:, ::-1, ::-1]).astype(np.uint8))
            else:
                o.create_dataset(key, data=value.astype(np.float64))
        o.create_dataset("ee_states", data=np.concatenate([obs["ee_pos"], obs["ee_ori"]], axis=1))
        for cam in self.GEOMETRY_CAMERAS:
            if f"{cam}_depth" in obs:
                self._add_geometry(o, cam, n, obs)
        self.num_demos += 1
        self.total += n

    @staticmethod
    def _add_geometry(group, cam: str, n: int, obs: dict) -> None:
        depth = np.asarray(obs[f"{cam}_depth"], dtype=np.float32)  # [T, H, W]
        K = np.asarray(obs[f"{cam}_intrinsics"], dtype=np.float32).reshape(n, 4)
        E = np.asarray(obs[f"{cam}_extrinsics"], dtype=np.float32).reshape(n, 12)
        if depth.shape[0] != n:
            raise ValueError(f"obs '{cam}_depth' has {depth.shape[0]} rows for {n} actions")
        h, w = depth.shape[1:3]
        raw_K = np.stack([-K[:, 0], -K[:, 1], w - K[:, 2], h - K[:, 3]], axis=1)
        group.create_dataset(f"{cam}_depth", data=np.ascontiguousarray(depth[:, ::-1, ::-1])[..., None],
                             compression="gzip", compression_opts=1)
        group.create_dataset(f"{cam}_intrinsics", data=raw_K)
        group.create_dataset(f"{cam}_extrinsics", data=E)

    def close(self) -> Path:
        if self.file:
            self.data.attrs["num_demos"] = self.num_demos
            self.data.attrs["total"] = self.total
            self.file.close()
            self.file = None
        return self.path
