"""Self-contained, weight-exact port of the VGGT aggregator (facebookresearch/vggt).

    from vggt_vla.models.vggt import pretrained_vggt_1b
    agg = pretrained_vggt_1b("facebook/VGGT-1B", device="cuda").requires_grad_(False)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        layers, patch_start_idx = agg(images)  # images [B, S, 3, H, W] in [0, 1]

Parity with the reference: `python -m vggt_vla.models.vggt.parity FIXTURE_DIR`.
"""

from .aggregator import Aggregator
from .checkpoint import CheckpointError, LoadReport, load_aggregator_weights, read_state_dict
from .presets import SMALL_KWARGS, VGGT_1B_HUB_ID, VGGT_1B_KWARGS, VGGT_1B_NUM_PARAMS, pretrained_vggt_1b, vggt_1b, vggt_small

__all__ = [
    "Aggregator",
    "SMALL_KWARGS",
    "CheckpointError",
    "LoadReport",
    "VGGT_1B_HUB_ID",
    "VGGT_1B_KWARGS",
    "VGGT_1B_NUM_PARAMS",
    "load_aggregator_weights",
    "pretrained_vggt_1b",
    "read_state_dict",
    "vggt_1b",
    "vggt_small",
]
