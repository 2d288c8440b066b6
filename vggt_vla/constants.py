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

# 7-D action: end-effector translation and rotation deltas, then the gripper command.
ACTION_NAMES = ["dx", "dy", "dz", "dax", "day", "daz", "gripper"]

# Per-frame bookkeeping columns of a LeRobot dataset (not features a policy reads).
BOOKKEEPING_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
