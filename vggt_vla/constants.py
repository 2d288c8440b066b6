"""Feature keys and names shared by the data, simulator, policy and evaluation code.

The layout is LIBERO's as LeRobot stores it (lerobot/libero_*_image): two cameras, an 8-D state,
a 7-D end-effector delta action. A dataset with other keys is mapped onto them with
data.rename_map, or trained on with data.camera_keys / state_key / action_key set to its own.
"""

AGENT_VIEW = "observation.images.image"        # the scene camera
WRIST_VIEW = "observation.images.wrist_image"  # the camera on the gripper
CAMERA_KEYS = (AGENT_VIEW, WRIST_VIEW)
STATE_KEY = "observation.state"
ACTION_KEY = "action"
INSTRUCTION_KEY = "instruction"  # in a raw observation dict (LeRobot items call it "task")

# Recorded geometry (vggt_vla/data/geometry.py), per camera `observation.images.X`: a depth map
# `observation.depth.X` and the camera's parameters `observation.camera_intrinsics.X` /
# `observation.camera_extrinsics.X`. Derived from the camera key, so a new camera needs no new names.
CAMERA_PREFIX = "observation.images."


def _camera_suffix(camera_key: str) -> str:
    if not camera_key.startswith(CAMERA_PREFIX):
        raise ValueError(f"geometry features are named after cameras '{CAMERA_PREFIX}X'; got {camera_key!r}")
    return camera_key[len(CAMERA_PREFIX):]


def depth_key(camera_key: str) -> str:
    return "observation.depth." + _camera_suffix(camera_key)


def camera_intrinsics_key(camera_key: str) -> str:
    return "observation.camera_intrinsics." + _camera_suffix(camera_key)


def camera_extrinsics_key(camera_key: str) -> str:
    return "observation.camera_extrinsics." + _camera_suffix(camera_key)


# 7-D action: end-effector translation and rotation deltas, then the gripper command.
ACTION_NAMES = ["dx", "dy", "dz", "dax", "day", "daz", "gripper"]

# Per-frame bookkeeping columns of a LeRobot dataset (not features a policy reads).
BOOKKEEPING_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
