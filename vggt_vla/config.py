"""Configuration: one dataclass per component, loaded from YAML, validated on construction.

A config file has these sections, each mapping onto a dataclass below (a section left out takes
its defaults):

    model:            ModelConfig   (vision, language, simple_backbone, vggt, action_head,
                                     geometry_alignment)
    data:             DataConfig    (live: LiveScenesConfig)
    train:            TrainConfig
    sim:              SimConfig
    inference:        InferenceConfig  (how the trained policy is run; saved with the checkpoint)

YAML is read strictly: a key given twice in one mapping, at any level, is rejected naming both
lines. Unknown keys are rejected with the nearest valid name; invalid values and invalid combinations
are rejected in ``__post_init__`` with a message that names the field. Named configs (``simple``,
``dinov2``, ``full``, ...) map to YAML files in ``configs/``:

    from vggt_vla.config import load_config
    cfg = load_config("simple", overrides=["model.simple_backbone.depth=4"])

Command-line overrides use the same ``section.key=value`` syntax (``--set`` in the scripts); the
value is parsed as YAML, so ``true``, ``3``, ``1e-4`` and ``[a, b]`` mean what they look like.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from vggt_vla.constants import ACTION_KEY, CAMERA_KEYS, STATE_KEY
from vggt_vla.sim.light_meshes import check_max_mesh_faces

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"

# Named configs, openpi style: `python scripts/test_model.py --config simple`.
NAMED_CONFIGS = {
    "simple": "train_simple.yaml",
    "dinov2": "train_with_dinov2.yaml",
    "full": "train_full.yaml",
    "demo": "train_demo.yaml",
    "libero_cpu": "train_libero_cpu.yaml",
    "libero_object_cpu": "train_libero_object_cpu.yaml",
    "libero_goal_cpu": "train_libero_goal_cpu.yaml",
    "vggt_align": "train_vggt_align.yaml",
    "libero_cpu_geo_baseline": "train_libero_cpu_geo_baseline.yaml",
    "libero_cpu_geometry": "train_libero_cpu_geometry.yaml",
    "libero_cpu_vggt_align": "train_libero_cpu_vggt_align.yaml",
    "libero_cpu_layouts": "train_libero_cpu_layouts.yaml",
    "libero_cpu_redraw": "train_libero_cpu_redraw.yaml",
}


class ConfigError(ValueError):
    """A configuration value, key or combination is invalid. The message names the field."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    _check(value in choices, f"{name}={value!r} is not valid; choose one of {list(choices)}")


def _check_positive(name: str, value: float) -> None:
    _check(value > 0, f"{name} must be > 0, got {value!r}")


# --------------------------------------------------------------------------------------------
# Model components
# --------------------------------------------------------------------------------------------


@dataclass
class VisionConfig:
    """How camera images become vision tokens."""

    # False: a Conv2d patch embedding trained from scratch. True: a pretrained tower.
    use_vision_tower: bool = False
    # Tower to load when use_vision_tower is true: a Hugging Face hub id or local directory loaded
    # with transformers.AutoModel (DINOv2, CLIP and SigLIP vision models), or "timm/<model_name>"
    # to build the tower with timm (e.g. "timm/vit_small_patch14_dinov2").
    vision_tower_name: str = "facebook/dinov2-base"
    # Keep the tower's weights fixed (no gradients, eval mode). The projection to the fusion
    # width always trains.
    freeze_vision_tower: bool = True
    # Square input resolution in pixels; images are resized to this before encoding.
    image_size: int = 224
    # Patch size of the from-scratch patch embedding (the tower's own patch size is used otherwise).
    patch_size: int = 16
    # From-scratch patch embedding: "linear" (one Conv2d, kernel = stride = patch_size), "conv"
    # (3x3 stride-2 convolutions down to the patch grid; patch_size must be a power of 2), or
    # "linear_pool" (the linear patchify plus small 3x3 convolutional detectors max-pooled over
    # each patch, which fire wherever a small object sits in its patch: what tells a cube from a
    # ball; patch_size must be even).
    patch_stem: Literal["linear", "conv", "linear_pool"] = "linear"
    # Size of the learned camera-embedding table; a batch may carry 1..num_cameras cameras.
    num_cameras: int = 2

    def __post_init__(self):
        _check_positive("vision.image_size", self.image_size)
        _check_positive("vision.patch_size", self.patch_size)
        _check_positive("vision.num_cameras", self.num_cameras)
        _check_choice("vision.patch_stem", self.patch_stem, ("linear", "conv", "linear_pool"))
        if self.patch_stem == "conv":
            _check(self.patch_size >= 2 and self.patch_size & (self.patch_size - 1) == 0,
                   f"vision.patch_stem=conv halves the resolution per layer, so vision.patch_size must be "
                   f"a power of 2 (e.g. 8 or 16), got {self.patch_size}")
        if self.patch_stem == "linear_pool":
            _check(self.patch_size % 2 == 0,
                   f"vision.patch_stem=linear_pool pools 2x2 first, so vision.patch_size must be even, "
                   f"got {self.patch_size}")
        if not self.use_vision_tower:
            _check(
                self.image_size % self.patch_size == 0,
                f"vision.image_size={self.image_size} is not a multiple of "
                f"vision.patch_size={self.patch_size}; change one of them",
            )
        else:
            _check(bool(self.vision_tower_name), "vision.vision_tower_name is empty but "
                   "vision.use_vision_tower is true; name a tower or set use_vision_tower: false")


@dataclass
class LanguageConfig:
    """How the instruction becomes language tokens."""

    # Hugging Face hub id or local directory (tokenizer + model, loaded with the Auto classes).
    # Decoder models (Qwen) and encoder models (BERT-style) both work.
    language_model: str = "Qwen/Qwen3-0.6B-Base"
    # Tried, with a loud warning naming the first error, when language_model cannot be loaded.
    # null disables the fallback.
    fallback_language_model: Optional[str] = "Qwen/Qwen2-0.5B"
    # Keep the language model fixed. Frozen features of a repeated instruction are cached.
    freeze_language: bool = True
    # Instructions are truncated to this many tokens.
    max_length: int = 77
    # Number of distinct instructions whose frozen features are kept (least recently used evicted).
    feature_cache_size: int = 4096

    def __post_init__(self):
        _check(bool(self.language_model), "language.language_model is empty; name a model")
        _check_positive("language.max_length", self.max_length)
        _check(self.feature_cache_size >= 0, "language.feature_cache_size must be >= 0")


@dataclass
class SimpleBackboneConfig:
    """The light fusion backbone: graph convolution per modality + cross-modal self-attention."""

    depth: int = 6
    num_heads: int = 12
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    # Graph over the vision patches of each camera. Only "grid" exists today.
    graph_type: Literal["grid"] = "grid"
    # 4: up/down/left/right neighbours; 8: also the diagonals.
    grid_connectivity: int = 4

    def __post_init__(self):
        _check_positive("simple_backbone.depth", self.depth)
        _check_positive("simple_backbone.num_heads", self.num_heads)
        _check_positive("simple_backbone.mlp_ratio", self.mlp_ratio)
        _check(0.0 <= self.dropout < 1.0, f"simple_backbone.dropout must be in [0, 1), got {self.dropout}")
        _check_choice("simple_backbone.graph_type", self.graph_type, ("grid",))
        _check_choice("simple_backbone.grid_connectivity", self.grid_connectivity, (4, 8))


@dataclass
class VGGTConfig:
    """The pretrained facebook VGGT aggregator behind an adapter (backbone: vggt)."""

    # Load the pretrained aggregator weights (hub id or local file/dir in `checkpoint`).
    use_pretrained_vggt: bool = True
    checkpoint: str = "facebook/VGGT-1B"
    # Freeze the aggregator (no gradients, eval mode); the adapter layers always train.
    freeze_vggt: bool = True
    # late: VGGT tokens are fused with language/state/queries by trainable layers after VGGT.
    # cross_attention: the vision-encoder tokens attend to the VGGT tokens through one trainable
    #   cross-attention block (Evo-0); only they, not the VGGT tokens, enter the fusion layers.
    # inject: language tokens and action queries join VGGT's last `inject_last_k` global blocks;
    #   no vision encoder is built (VGGT is the only reader of the pixels).
    fusion: Literal["late", "cross_attention", "inject"] = "late"
    # Aggregator layers whose outputs are used (negative indices count from the end).
    feature_layers: list[int] = field(default_factory=lambda: [-1])
    # Also pass VGGT's per-frame camera tokens to the fusion.
    use_camera_tokens: bool = False
    # Trainable attention layers after VGGT (late and cross_attention fusion) and their heads
    # (must divide model.dim; the cross-attention block uses them too).
    fusion_depth: int = 2
    fusion_heads: int = 12
    # Number of final global blocks that see the injected tokens (inject fusion).
    inject_last_k: int = 4
    # VGGT input resolution; must be a multiple of VGGT's patch size 14. Camera images of another
    # size are resized to it (logged once).
    image_size: int = 224
    # Overrides of the VGGT-1B constructor arguments (e.g. {embed_dim: 64, depth: 2, ...}). VGGT-1B's
    # weights need the defaults ({}); a geometry model trained here (scripts/train_geometry_model.py)
    # needs the ones its config.json records.
    aggregator_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _check_choice("vggt.fusion", self.fusion, ("late", "cross_attention", "inject"))
        _check(len(self.feature_layers) > 0, "vggt.feature_layers is empty; e.g. [-1] or [4, 11, 17, 23]")
        _check(self.fusion_depth >= 0, "vggt.fusion_depth must be >= 0")
        _check(self.fusion == "inject" or self.fusion_depth >= 1,
               f"vggt.fusion_depth must be >= 1 with vggt.fusion: {self.fusion} (the action queries read "
               f"the fused tokens through these layers)")
        _check_positive("vggt.fusion_heads", self.fusion_heads)
        _check_positive("vggt.inject_last_k", self.inject_last_k)
        _check(self.image_size % 14 == 0,
               f"vggt.image_size={self.image_size} is not a multiple of VGGT's patch size 14; "
               f"use e.g. 224 or 518")


# VGGT-1B's aggregator (models/vggt/presets.py), for checks and sizes without building it
VGGT_1B_DEPTH = 24  # layers
VGGT_1B_WIDTH = 1024  # C: every layer outputs [frame | global] = 2C channels


@dataclass
class GeometryAlignmentConfig:
    """VGGT as a training-time geometry teacher (Spatial Forcing, arXiv 2510.12276).

    The backbone's vision tokens after layer `student_layer` go through a small trainable MLP to
    the teacher's width, are resampled to the teacher's patch grid (per camera), and are pulled
    towards the frozen VGGT aggregator's features of the same frames by
    weight * (1 - cosine similarity), averaged over patches and cameras. The teacher is built for
    training only: Policy.from_pretrained builds none and checkpoints hold no teacher weights.
    With train.cache_features each dataset frame's teacher features are computed once per run.
    """

    enabled: bool = False
    # Teacher weights: a hub id or a local file/directory (the loading code of model.vggt).
    checkpoint: str = "facebook/VGGT-1B"
    # Aggregator layers whose [frame | global] outputs, concatenated, are the target (negative
    # indices count from the end). VGGT-1B: width 2048 per layer.
    feature_layers: list[int] = field(default_factory=lambda: [-1])
    # Teacher input resolution (a multiple of 14); the cameras are resized to it.
    image_size: int = 224
    # Overrides of the VGGT-1B constructor: {} for VGGT-1B's weights, the checkpoint's config.json
    # aggregator_kwargs for a geometry model trained here (scripts/train_geometry_model.py).
    aggregator_kwargs: dict[str, Any] = field(default_factory=dict)
    # Backbone layer (0-based; negative from the end) after which the vision tokens are aligned:
    # simple_backbone.depth layers, or vggt.fusion_depth fusion blocks (late, cross_attention).
    # Spatial Forcing found an intermediate layer best (vggt_align: 2 of 6); 0 fits every backbone.
    student_layer: int = 0
    # Hidden width of the projector MLP (student width -> hidden -> teacher width).
    projector_dim: int = 1024
    # lambda: weight of the alignment loss next to the action loss.
    weight: float = 0.5

    def __post_init__(self):
        _check(len(self.feature_layers) > 0,
               "model.geometry_alignment.feature_layers is empty; e.g. [-1]")
        depth = self.aggregator_kwargs.get("depth", VGGT_1B_DEPTH)
        for i in self.feature_layers:
            _check(-depth <= i < depth,
                   f"model.geometry_alignment.feature_layers: layer {i} is out of range for a VGGT "
                   f"aggregator of depth {depth} (use 0..{depth - 1} or -{depth}..-1)")
        _check(self.image_size > 0 and self.image_size % 14 == 0,
               f"model.geometry_alignment.image_size={self.image_size} is not a positive multiple of "
               f"VGGT's patch size 14; use e.g. 224")
        _check_positive("model.geometry_alignment.projector_dim", self.projector_dim)
        _check(self.weight > 0, f"model.geometry_alignment.weight must be > 0, got {self.weight}")


@dataclass
class GeometryTargetConfig:
    """Recorded scene geometry as a training-only target (after G3VLA's point-map loss).

    A small MLP reads the backbone's vision tokens after layer `layer` and predicts, per patch, the
    mean 3-D point of its pixels in the robot-base frame and/or their mean depth, from the depth
    maps and camera parameters recorded with the demonstrations (data/geometry.py; generate them
    with generate_libero_demos.py --geometry). Loss: weight * L1 in metres over the patches that
    have depth. The head runs in training only: inference never calls it (0 extra FLOPs).
    """

    # lambda: weight of the geometry loss next to the action loss (0: off).
    weight: float = 0.0
    # Backbone layer (0-based; negative from the end) whose vision tokens predict the geometry:
    # simple_backbone.depth layers, or vggt.fusion_depth fusion blocks.
    layer: int = 0
    # What each patch predicts: point (x, y, z in the base frame), depth, or both.
    predict: Literal["point", "depth", "both"] = "both"
    # Hidden width of the prediction MLP.
    hidden_dim: int = 128

    @property
    def enabled(self) -> bool:
        return self.weight > 0

    @property
    def channels(self) -> list[int]:
        """Channels of data/geometry.py's per-patch geometry (x, y, z, depth) that are predicted."""
        return {"point": [0, 1, 2], "depth": [3], "both": [0, 1, 2, 3]}[self.predict]

    def __post_init__(self):
        _check(self.weight >= 0, f"model.geometry_target.weight must be >= 0 (0 = off), got {self.weight}")
        _check_choice("model.geometry_target.predict", self.predict, ("point", "depth", "both"))
        _check_positive("model.geometry_target.hidden_dim", self.hidden_dim)


@dataclass
class ActionHeadConfig:
    """Reads the action-query outputs into a chunk of future actions [B, T, A]."""

    # l1: MLP regression trained with L1. flow_matching: denoiser trained with rectified flow.
    type: Literal["l1", "flow_matching"] = "l1"
    # T: number of future actions predicted per step.
    chunk_size: int = 10
    # A: action dimension (LIBERO: 6-D end-effector delta + gripper = 7).
    action_dim: int = 7
    # Width of the hidden layers of the L1 MLP / the flow-matching denoiser.
    hidden_dim: int = 1024
    # Hidden layers of the L1 MLP.
    num_layers: int = 2
    # L1 head: each query output is first projected to this width, so the flattened MLP input
    # (num_action_queries x query_proj_dim) stays small.
    query_proj_dim: int = 128
    # Flow matching: transformer layers and heads of the denoiser.
    denoiser_depth: int = 3
    denoiser_heads: int = 8
    # Flow matching: Euler integration steps at inference.
    num_inference_steps: int = 10

    def __post_init__(self):
        _check_choice("action_head.type", self.type, ("l1", "flow_matching"))
        for name in ("chunk_size", "action_dim", "hidden_dim", "num_layers", "query_proj_dim", "denoiser_depth",
                     "denoiser_heads", "num_inference_steps"):
            _check_positive(f"action_head.{name}", getattr(self, name))
        if self.type == "flow_matching":
            _check(self.hidden_dim % self.denoiser_heads == 0,
                   f"action_head.hidden_dim={self.hidden_dim} must be divisible by "
                   f"action_head.denoiser_heads={self.denoiser_heads}")


@dataclass
class ModelConfig:
    """The whole policy network."""

    # D: the fusion width every modality is projected to.
    dim: int = 768
    # Learned query tokens that take part in the backbone and feed the action head.
    num_action_queries: int = 16
    # Proprioceptive state dimension (LIBERO: 8); 0 means the model takes no state.
    state_dim: int = 8
    # Fusion backbone: "simple" (graph conv + attention) or "vggt" (pretrained VGGT aggregator).
    backbone: Literal["simple", "vggt"] = "simple"
    # FiLM the vision tokens with the pooled instruction before fusion (models/film.py), so a
    # patch showing the named object can stand out in its own features.
    language_film: bool = False
    # Spatial soft-argmax keypoints per camera (models/keypoints.py): K learned features, each
    # read as the (x, y) where it peaks on the patch grid; one token per camera joins the query
    # outputs the action head reads. 0 disables them.
    spatial_keypoints: int = 0
    # Auxiliary goal loss (training only): a linear head on what the action head reads predicts
    # the state at the last frame of the episode (where the demonstration ends), L1 in
    # normalised units averaged over the state's dimensions, times this weight; 0 disables it.
    # The action says only which way to move, saturated; the goal says *where*, as a number the
    # loss can pull on directly (docs/experiments/2026-12-01-demo-recipe.md). Needs model.state_dim > 0.
    goal_loss_weight: float = 0.0
    # What the goal head reads. "head_inputs": everything the action head reads (flattened).
    # "keypoint": the first keypoint of the first camera, the state and the pooled instruction,
    # each entering linearly: the goal must then be an affine image of where that one keypoint
    # is (plus offsets the instruction and the state add), which pulls it onto the named object.
    # Needs model.spatial_keypoints > 0.
    goal_from: Literal["head_inputs", "keypoint"] = "head_inputs"
    vision: VisionConfig = field(default_factory=VisionConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    simple_backbone: SimpleBackboneConfig = field(default_factory=SimpleBackboneConfig)
    vggt: VGGTConfig = field(default_factory=VGGTConfig)
    action_head: ActionHeadConfig = field(default_factory=ActionHeadConfig)
    geometry_alignment: GeometryAlignmentConfig = field(default_factory=GeometryAlignmentConfig)
    geometry_target: GeometryTargetConfig = field(default_factory=GeometryTargetConfig)

    @property
    def uses_vision_encoder(self) -> bool:
        """False for vggt.fusion: inject, where VGGT alone reads the pixels (no encoder is built)."""
        return not (self.backbone == "vggt" and self.vggt.fusion == "inject")

    @property
    def fusion_layers(self) -> int:
        """Layers of the backbone whose vision tokens a geometry-alignment student can tap."""
        return self.simple_backbone.depth if self.backbone == "simple" else self.vggt.fusion_depth

    def __post_init__(self):
        _check_positive("model.dim", self.dim)
        _check_positive("model.num_action_queries", self.num_action_queries)
        _check(self.state_dim >= 0, f"model.state_dim must be >= 0 (0 = no state), got {self.state_dim}")
        _check(self.spatial_keypoints >= 0, f"model.spatial_keypoints must be >= 0 (0 = off), "
                                            f"got {self.spatial_keypoints}")
        _check(self.goal_loss_weight >= 0, f"model.goal_loss_weight must be >= 0 (0 = off), "
                                           f"got {self.goal_loss_weight}")
        _check(not (self.goal_loss_weight and self.state_dim == 0),
               "model.goal_loss_weight predicts the episode's last state, but model.state_dim is 0 (no "
               "state); give the model the dataset's state or set goal_loss_weight: 0")
        _check_choice("model.goal_from", self.goal_from, ("head_inputs", "keypoint"))
        _check(not (self.goal_from == "keypoint" and self.goal_loss_weight and not self.spatial_keypoints),
               "model.goal_from: keypoint reads a spatial keypoint, but model.spatial_keypoints is 0; "
               "set spatial_keypoints > 0 or goal_from: head_inputs")
        _check_choice("model.backbone", self.backbone, ("simple", "vggt"))
        if self.backbone == "simple":
            heads = self.simple_backbone.num_heads
            _check(self.dim % heads == 0,
                   f"model.dim={self.dim} is not divisible by simple_backbone.num_heads={heads}")
        elif self.vggt.fusion != "inject":
            _check(self.dim % self.vggt.fusion_heads == 0,
                   f"model.dim={self.dim} is not divisible by vggt.fusion_heads={self.vggt.fusion_heads}")
        if not self.uses_vision_encoder:
            for name in ("language_film", "spatial_keypoints"):
                _check(not getattr(self, name),
                       f"model.{name} works on the vision-encoder tokens, which vggt.fusion: inject does "
                       f"not build; turn it off or use vggt.fusion: late or cross_attention")
        if self.geometry_alignment.enabled:
            _check(self.uses_vision_encoder,
                   "model.geometry_alignment.enabled: the student is the backbone's vision-encoder tokens, "
                   "which vggt.fusion: inject does not have; use model.backbone: simple or vggt.fusion: "
                   "late / cross_attention")
            self._check_tapped_layer("model.geometry_alignment.student_layer", self.geometry_alignment.student_layer)
        if self.geometry_target.enabled:
            _check(self.uses_vision_encoder,
                   "model.geometry_target reads the backbone's vision-encoder tokens, which vggt.fusion: inject "
                   "does not have; use model.backbone: simple or vggt.fusion: late / cross_attention")
            _check(not self.geometry_alignment.enabled,
                   "model.geometry_target and model.geometry_alignment both tap the backbone's vision tokens; "
                   "train with one of them")
            self._check_tapped_layer("model.geometry_target.layer", self.geometry_target.layer)

    def _check_tapped_layer(self, name: str, layer: int) -> None:
        """A backbone layer whose vision tokens a training-only head reads exists."""
        depth = self.fusion_layers
        where = "simple_backbone.depth" if self.backbone == "simple" else "vggt.fusion_depth"
        _check(-depth <= layer < depth, f"{name}={layer} is out of range for a backbone of {depth} layers "
                                        f"({where}); use 0..{depth - 1} or -{depth}..-1")


# --------------------------------------------------------------------------------------------
# Data and training
# --------------------------------------------------------------------------------------------


@dataclass
class LiveScenesConfig:
    """data.live: train on new scenes of the demo env instead of the dataset's recorded episodes.

    When training starts, the demo env's scripted expert solves new scenes (simulated, nothing
    rendered), its executed actions perturbed by action_noise, until they hold one epoch of
    train.max_steps batches (recording/live_scenes.py); frames are rendered as they are loaded.
    The dataset still gives the normalisation statistics and the validation episodes. Only the
    demo env is fast enough to simulate a run's scenes when training starts; the demo recipe then
    sees a new scene every few items instead of learning its recorded episodes by heart
    (docs/experiments/2026-12-01-demo-recipe.md). Needs sim.name: demo and train.max_steps.
    """

    enabled: bool = False
    # Every n-th frame of each scene's episode, from a random offset, is a training item (~27 / n
    # items a scene). 1 uses every frame (fewest scenes, least simulation).
    frame_stride: int = 4
    # The noise added to the expert's executed (dx, dy) while its own action is recorded:
    # n_t = action_noise_correlation * n_(t-1) + N(0, action_noise^2). Correlated noise drifts the
    # gripper off the expert's path for several steps (it arrives off-centre, passes the object),
    # and the recorded actions show the way back: the recoveries a policy needs when its own errors
    # take it there (DART-style). configs/train_demo.yaml uses a correlation of 0.8; why:
    # docs/experiments/2026-12-01-demo-recipe.md ("The recipe now").
    action_noise: float = 0.3
    action_noise_correlation: float = 0.0
    # The fraction of scenes in which another object has the target's colour, so that only the
    # shape word says which is meant (null: the env's own 2 in 7). The shape word's training signal
    # comes from these scenes alone. Validation and evaluation keep the env's own mix.
    shared_colour: Optional[float] = None

    def __post_init__(self):
        _check(self.frame_stride >= 1, f"data.live.frame_stride must be >= 1, got {self.frame_stride}")
        _check(self.action_noise >= 0, f"data.live.action_noise must be >= 0, got {self.action_noise}")
        _check(0 <= self.action_noise_correlation < 1,
               f"data.live.action_noise_correlation must be in [0, 1), got {self.action_noise_correlation}")
        _check(self.shared_colour is None or 0.0 <= self.shared_colour <= 1.0,
               f"data.live.shared_colour must be in [0, 1] or null, got {self.shared_colour}")
        _check(self.shared_colour is None or self.enabled,
               "data.live.shared_colour sets the scene mix of the live scenes; set data.live.enabled: true or drop it")


@dataclass
class DataConfig:
    """Where the training data comes from and which features it uses (LeRobot or LIBERO HDF5)."""

    # lerobot: a LeRobot v2.1 / v3.0 dataset (dataset_repo or dataset_root). libero_hdf5: the
    # original LIBERO release, one robomimic-style .hdf5 file per task (every *.hdf5 under
    # dataset_root, or the files in hdf5_files); its cameras map to the keys below by default.
    dataset_format: str = "lerobot"
    # libero_hdf5: the files to read (paths or glob patterns); null: all *.hdf5 under dataset_root.
    hdf5_files: Optional[list[str]] = None
    # Hugging Face dataset repo id, used when dataset_root is null.
    dataset_repo: str = "lerobot/libero_spatial_image"
    # Local dataset root directory (overrides the hub download).
    dataset_root: Optional[str] = None
    # Hub revision (branch, tag or commit) of dataset_repo; null: the default branch.
    dataset_revision: Optional[str] = None
    # Camera features, in model camera order (the first is the agent view).
    camera_keys: list[str] = field(
        default_factory=lambda: list(CAMERA_KEYS))
    # Dataset feature name -> name used above, for datasets that call a camera differently
    # (e.g. {"observation.images.image2": "observation.images.wrist_image"}).
    rename_map: dict[str, str] = field(default_factory=dict)
    state_key: str = STATE_KEY
    action_key: str = ACTION_KEY
    # Episode indices to use (null: all); the validation split is taken from these.
    episodes: Optional[list[int]] = None
    # Rotate every dataset camera image 180 degrees, for datasets stored upside down (LIBERO's
    # renderer). Live env images are oriented by the env wrapper to match the training images.
    flip_images: bool = False
    # Train-time augmentation: random resized crop + color jitter. Never applied to validation.
    augment: bool = False
    # Augmentation: smallest crop, as a fraction of the image area (aspect ratio is kept).
    crop_scale: float = 0.9
    # Augmentation: brightness/contrast/saturation factors are drawn from [1 - x, 1 + x].
    color_jitter: float = 0.1
    # State/action normalization: mean_std, min_max (to [-1, 1]), quantile (q01/q99 to [-1, 1]),
    # or none. The statistics used are saved with every checkpoint.
    normalization: Literal["mean_std", "min_max", "quantile", "none"] = "mean_std"
    # Fraction of episodes held out for validation (whole episodes; 0 disables validation).
    val_fraction: float = 0.1
    # Seed of the episode shuffle that picks the validation episodes.
    split_seed: int = 0
    # Train on live scenes of the demo env instead of the dataset's episodes (LiveScenesConfig).
    live: LiveScenesConfig = field(default_factory=LiveScenesConfig)
    # DataLoader worker processes (0: load in the training process).
    num_workers: int = 2
    # Copy batches to page-locked memory (only useful with a CUDA device).
    pin_memory: bool = False
    # Keep workers alive between passes (ignored when num_workers is 0). Training builds one loader
    # per epoch instead, so that a resumed run's workers are seeded as the uninterrupted run's were.
    persistent_workers: bool = True
    # Batches each worker loads ahead (ignored when num_workers is 0).
    prefetch_factor: int = 2
    # A decoded video frame may be this far (seconds) from the requested timestamp.
    video_tolerance_s: float = 1e-4
    # Where parquet image bytes are cached for random access (null: $VGGT_VLA_CACHE or
    # ~/.cache/vggt_vla).
    cache_dir: Optional[str] = None

    def __post_init__(self):
        _check(len(self.camera_keys) > 0, "data.camera_keys is empty; name at least one camera feature")
        _check(len(set(self.camera_keys)) == len(self.camera_keys),
               f"data.camera_keys has duplicates: {self.camera_keys}")
        from vggt_vla.data.source import FORMATS  # the table of formats (a new one: one row there)

        _check_choice("data.dataset_format", self.dataset_format, tuple(FORMATS))
        if self.dataset_format == "lerobot":
            _check(bool(self.dataset_root) or bool(self.dataset_repo),
                   "data.dataset_repo and data.dataset_root are both empty; name a dataset")
        if self.dataset_format == "libero_hdf5":
            _check(bool(self.dataset_root) or bool(self.hdf5_files),
                   "data.dataset_format=libero_hdf5 needs data.dataset_root (a directory of .hdf5 files) "
                   "or data.hdf5_files (a list of files)")
        else:
            _check(not self.hdf5_files, "data.hdf5_files is only read with data.dataset_format: libero_hdf5; "
                                        "set that or drop hdf5_files")
        _check(bool(self.action_key), "data.action_key is empty")
        _check(self.episodes is None or len(self.episodes) > 0,
               "data.episodes is an empty list; use null for all episodes")
        _check(0.0 < self.crop_scale <= 1.0, f"data.crop_scale must be in (0, 1], got {self.crop_scale}")
        _check(0.0 <= self.color_jitter < 1.0, f"data.color_jitter must be in [0, 1), got {self.color_jitter}")
        _check_choice("data.normalization", self.normalization, ("mean_std", "min_max", "quantile", "none"))
        _check(0.0 <= self.val_fraction < 1.0, f"data.val_fraction must be in [0, 1), got {self.val_fraction}")
        _check(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        _check_positive("data.prefetch_factor", self.prefetch_factor)
        _check(self.video_tolerance_s >= 0, f"data.video_tolerance_s must be >= 0, got {self.video_tolerance_s}")


@dataclass
class TrainConfig:
    """Optimisation, logging and checkpointing."""

    # Per-process batch size (samples per forward); the optimizer sees
    # batch_size x accumulation_steps x processes samples per step.
    batch_size: int = 8
    num_epochs: int = 10
    # Stop after this many optimizer steps (null: run num_epochs). Also sets the schedule length.
    max_steps: Optional[int] = None
    lr: float = 1e-4
    # AdamW weight decay, on weight matrices only (not norms, biases, embeddings, learned tokens).
    weight_decay: float = 0.01
    # Linear warm-up steps, then cosine decay to min_lr_ratio x lr at the last step.
    warmup_steps: int = 500
    min_lr_ratio: float = 0.1
    # Micro-batches whose gradients are summed before each optimizer step.
    accumulation_steps: int = 1
    # Clip the global gradient norm to this value (null: no clipping).
    grad_clip: Optional[float] = 1.0
    # Autocast precision for forward/backward: no, bf16 (GPU or CPU) or fp16 (GPU, with scaler).
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    # torch.compile the transformer blocks and the action head (the first steps compile).
    compile: bool = False
    # Recompute backbone activations in the backward pass to save memory.
    gradient_checkpointing: bool = False
    # Store frozen features per dataset frame on disk and reuse them from the second epoch on:
    # the frozen vision tower's, and the geometry teacher's (model.geometry_alignment). Needs
    # data.augment: false and one process.
    cache_features: bool = False
    # Where the feature cache lives (null: <log_dir>/feature_cache, shared by runs of a log_dir).
    feature_cache_dir: Optional[str] = None
    seed: int = 42
    # "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ...
    device: str = "auto"
    # TensorBoard, metrics.jsonl, config.yaml and checkpoints go to <log_dir>/<exp_name>/.
    log_dir: str = "logs"
    exp_name: str = "vggt_vla"
    # Log training scalars every N optimizer steps (this is also when NaN/inf losses are caught).
    log_every: int = 10
    # Validate (and maybe save `best`) every N optimizer steps and at the end (0: only at the end).
    eval_every: int = 500
    # Batches per validation (null: the whole validation split).
    val_batches: Optional[int] = 50
    # Save `last` every N optimizer steps and at the end.
    save_every: int = 500
    # Log the camera + predicted/target action-trace panel every N optimizer steps (0: never).
    image_every: int = 500

    def __post_init__(self):
        _check_positive("train.batch_size", self.batch_size)
        _check_positive("train.num_epochs", self.num_epochs)
        _check(self.max_steps is None or self.max_steps > 0, "train.max_steps must be > 0 or null")
        _check_positive("train.lr", self.lr)
        _check(self.weight_decay >= 0, "train.weight_decay must be >= 0")
        _check(self.warmup_steps >= 0, "train.warmup_steps must be >= 0")
        _check(0.0 <= self.min_lr_ratio <= 1.0, "train.min_lr_ratio must be in [0, 1]")
        _check_positive("train.accumulation_steps", self.accumulation_steps)
        _check(self.grad_clip is None or self.grad_clip > 0, "train.grad_clip must be > 0 or null")
        _check_choice("train.mixed_precision", self.mixed_precision, ("no", "bf16", "fp16"))
        _check(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
               f"train.device={self.device!r} is not valid; use auto, cpu, cuda or cuda:N")
        for name in ("log_every", "save_every"):
            _check_positive(f"train.{name}", getattr(self, name))
        for name in ("eval_every", "image_every"):
            _check(getattr(self, name) >= 0, f"train.{name} must be >= 0")
        _check(self.val_batches is None or self.val_batches > 0, "train.val_batches must be > 0 or null")
        _check(bool(self.exp_name) and "/" not in self.exp_name,
               f"train.exp_name={self.exp_name!r} must be a non-empty name without '/'")


@dataclass
class SimConfig:
    """The simulator this config's policy is scored in, and how its demonstrations are made.

    quick_start.sh reads it: with `demos_per_task` > 0 it generates the dataset at
    data.dataset_root with the scripted expert when it is missing (LIBERO: dataset_root is
    <out>/lerobot), and after training it evaluates closed loop. eval.py --sim NAME uses
    camera_size, fast_render and max_mesh_faces as defaults, so evaluation renders like the
    demonstrations did.
    """

    # "demo" or "libero" (null: the config has no simulator; quick_start evaluates offline only).
    name: Optional[str] = None
    suite: Optional[str] = None          # LIBERO suite (null: libero_spatial)
    tasks: Optional[list[int]] = None    # task ids for demos and evaluation (null: every task)
    camera_size: Optional[int] = None    # render resolution (null: the simulator's default)
    fast_render: bool = False            # LIBERO: no anti-aliasing/reflections (cheaper on a CPU)
    # LIBERO: render simplified copies of the visual meshes with more triangles than this (physics
    # unchanged; ~2x faster rendering on a CPU at 2000: vggt_vla/sim/light_meshes.py); null: as shipped.
    max_mesh_faces: Optional[int] = None
    # Scripted demonstrations per task (0: the dataset comes from elsewhere), from new scenes.
    demos_per_task: int = 0
    # Gaussian noise on the executed actions of these demonstrations (the expert's are recorded):
    # recovery data (generate_libero_demos.py --action_noise).
    demo_action_noise: float = 0.0
    # Its correlation from step to step (--action_noise_correlation): 0 independent, near 1 drifting.
    demo_action_noise_correlation: float = 0.0
    # The fraction of demonstration scenes in which the goal's target and another object exchange
    # places (--layout_exchange; sim/layout_exchange.py): layouts LIBERO's sampler never draws, which
    # LIBERO-PRO's swap suites test. 0: LIBERO's layouts only.
    demo_layout_exchange: float = 0.0
    # Start each demonstration scene the way evaluation starts a benchmark state: the sampled objects
    # on a second draw of the fixtures (--redraw_fixtures; LiberoEnv.reset), so that a bowl in the
    # cabinet's drawer or on its top sits off-centre as it does in the benchmark's states.
    demo_redraw_fixtures: bool = False
    # Record each camera's depth and intrinsics/extrinsics with the demonstrations (generate_libero_demos
    # --geometry): the targets of model.geometry_target.
    demo_geometry: bool = False
    # Closed-loop evaluation: episodes per task (LIBERO: initial states 0..N-1), processes.
    eval_episodes_per_task: int = 10
    workers: int = 2
    # Policy steps per evaluation episode (null: the suite's cap, e.g. 220 for libero_spatial). A
    # smaller cap is only for smoke tests: an episode cut short counts as a failure.
    eval_max_steps: Optional[int] = None
    # Also scored after the standard states (quick_start.sh), to measure robustness rather than
    # memorised layouts: other suites of the same tasks, e.g. LIBERO-PRO's libero_spatial_swap (objects
    # moved), _object (objects replaced) and _lan (instructions rephrased), on their first
    # robustness_episodes_per_task initial states per task; and the standard states again with the
    # agent-view camera moved sideways by eval_camera_shift[0] metres and turned by [1] degrees.
    robustness_suites: list[str] = field(default_factory=list)
    robustness_episodes_per_task: int = 5
    eval_camera_shift: Optional[list[float]] = None

    def __post_init__(self):
        _check_choice("sim.name", self.name, (None, "demo", "libero"))
        _check(all(isinstance(s, str) and s for s in self.robustness_suites),
               f"sim.robustness_suites must be a list of suite names, got {self.robustness_suites!r}")
        _check(not self.robustness_suites or self.name == "libero",
               "sim.robustness_suites are LIBERO suites: they need sim.name: libero")
        _check_positive("sim.robustness_episodes_per_task", self.robustness_episodes_per_task)
        _check(self.eval_max_steps is None or self.eval_max_steps > 0, "sim.eval_max_steps must be > 0 or null")
        _check(self.eval_camera_shift is None or (len(self.eval_camera_shift) == 2 and
                                                  all(math.isfinite(v) for v in self.eval_camera_shift)),
               f"sim.eval_camera_shift must be [metres, degrees], e.g. [0.05, 5], got {self.eval_camera_shift!r}")
        _check(self.eval_camera_shift is None or self.name == "libero",
               "sim.eval_camera_shift moves LIBERO's agent-view camera: it needs sim.name: libero")
        _check(self.camera_size is None or self.camera_size > 0, "sim.camera_size must be > 0 or null")
        _check(self.max_mesh_faces is None or self.name == "libero", "sim.max_mesh_faces needs sim.name: libero")
        try:
            check_max_mesh_faces(self.max_mesh_faces, "sim.max_mesh_faces")
        except ValueError as err:
            raise ConfigError(str(err)) from None
        _check(self.demos_per_task >= 0, "sim.demos_per_task must be >= 0")
        _check(self.demo_action_noise >= 0, "sim.demo_action_noise must be >= 0")
        _check(0 <= self.demo_action_noise_correlation < 1, "sim.demo_action_noise_correlation must be in [0, 1)")
        _check(0 <= self.demo_layout_exchange <= 1, "sim.demo_layout_exchange is a fraction of the scenes: [0, 1]")
        _check_positive("sim.eval_episodes_per_task", self.eval_episodes_per_task)
        _check_positive("sim.workers", self.workers)
        _check(self.demos_per_task == 0 or self.name == "libero",
               "sim.demos_per_task > 0 needs sim.name: libero (the demo dataset has its own script)")


# An explicit "no temporal ensembling" for an argument whose None means "the config's setting".
ENSEMBLE_OFF = "off"


@dataclass
class InferenceConfig:
    """How the trained policy is run. Saved with the checkpoint's config, so a checkpoint carries
    how it is meant to be run; the default of Policy, closed-loop evaluation (eval.py --sim),
    benchmark.py and infer.py, whose explicit arguments override it."""

    # Actions of each predicted chunk executed before predicting again (1..action_head.chunk_size).
    # Executing a whole chunk open loop is a known failure mode; a short queue re-plans often.
    n_action_steps: int = 5
    # ACT temporal ensembling instead of the action queue: predict every step and average all the
    # predictions made for the current step, weighting the older ones by exp(-coefficient * age
    # index); ACT uses 0.01. null: the action queue.
    temporal_ensemble: Optional[float] = None

    def __post_init__(self):
        _check(self.n_action_steps >= 1, f"inference.n_action_steps must be >= 1 (actions executed per predicted "
                                         f"chunk), got {self.n_action_steps}")
        _check(self.temporal_ensemble is None or math.isfinite(self.temporal_ensemble),
               f"inference.temporal_ensemble must be a finite coefficient (e.g. 0.01) or null, "
               f"got {self.temporal_ensemble}")

    def overridden(self, n_action_steps: Optional[int] = None,
                   temporal_ensemble: Optional[float | str] = None) -> "InferenceConfig":
        """These settings with explicit arguments in their place: None keeps this config's value,
        temporal_ensemble=ENSEMBLE_OFF chooses the action queue."""
        if temporal_ensemble is None:
            temporal_ensemble = self.temporal_ensemble
        elif temporal_ensemble == ENSEMBLE_OFF:
            temporal_ensemble = None
        return InferenceConfig(self.n_action_steps if n_action_steps is None else n_action_steps, temporal_ensemble)

    def check_chunk(self, chunk_size: int) -> None:
        """A queue cannot execute more actions than a chunk holds."""
        _check(self.n_action_steps <= chunk_size,
               f"inference.n_action_steps={self.n_action_steps} is more than the "
               f"model.action_head.chunk_size={chunk_size} actions a chunk holds; choose 1..{chunk_size} "
               f"(--n_action_steps, or inference.n_action_steps in the config)")

    def describe(self) -> str:
        """How a policy run with these settings uses a predicted chunk, in one line."""
        if self.temporal_ensemble is not None:
            return (f"the policy predicts at every step and averages the rows predicted for that step "
                    f"(temporal ensembling, coefficient {self.temporal_ensemble})")
        return f"the policy executes the first {self.n_action_steps} rows, then predicts again"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def __post_init__(self):
        # A chosen n_action_steps is checked against the chunk here. The default is checked when a
        # policy runs (Policy), so training configs and checkpoints with chunks shorter than the
        # default, run with an explicit n_action_steps, keep loading.
        if self.inference.n_action_steps != InferenceConfig.n_action_steps:
            self.inference.check_chunk(self.model.action_head.chunk_size)
        if self.sim.demos_per_task > 0:
            root = self.data.dataset_root or ""
            _check(self.data.dataset_format == "lerobot" and Path(root).name == "lerobot",
                   f"sim.demos_per_task > 0 generates a LeRobot dataset at <out>/lerobot, so data.dataset_root "
                   f"must end in /lerobot (got {root!r}) with data.dataset_format: lerobot")
        cams = len(self.data.camera_keys)
        _check(cams <= self.model.vision.num_cameras,
               f"data.camera_keys lists {cams} cameras but model.vision.num_cameras="
               f"{self.model.vision.num_cameras}; raise num_cameras or drop a camera")

        if self.data.live.enabled:
            _check(self.sim.name == "demo",
                   f"data.live.enabled trains on live scenes of the demo env, but sim.name is "
                   f"{self.sim.name!r}; set sim.name: demo or data.live.enabled: false (LIBERO's expert is "
                   f"far too slow to simulate a run's scenes when training starts: record a dataset instead)")
            _check(bool(self.train.max_steps), "data.live.enabled draws one epoch of train.max_steps batches; "
                                               "set train.max_steps")
            _check(not self.train.cache_features, "train.cache_features caches features by dataset frame, "
                                                  "but data.live frames are not the dataset's; drop one")
        if self.train.cache_features:
            v = self.model.vision
            frozen_tower = v.use_vision_tower and v.freeze_vision_tower and self.model.uses_vision_encoder
            _check(frozen_tower or self.model.geometry_alignment.enabled,
                   "train.cache_features caches frozen features: it needs a frozen vision tower "
                   "(model.vision.use_vision_tower and freeze_vision_tower true) or a geometry teacher "
                   "(model.geometry_alignment.enabled); a trainable encoder's features change every step")
            _check(not self.data.augment, "train.cache_features needs data.augment: false (augmented "
                   "frames differ every epoch, so their features cannot be reused)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Building dataclasses from plain dicts (YAML), with type checks and helpful errors
# --------------------------------------------------------------------------------------------


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against the type `hint` (recursing into dataclasses, lists and dicts)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        _check(isinstance(value, dict), f"{where} must be a mapping of fields, got {value!r}")
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is Literal:
        _check(value in args, f"{where}={value!r} is not valid; choose one of {list(args)}")
        return value
    if origin is list:
        _check(isinstance(value, (list, tuple)), f"{where} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _check(isinstance(value, dict), f"{where} must be a mapping, got {value!r}")
        return {_coerce(k, args[0], where): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        _check(isinstance(value, bool), f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads '1e-4' (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        _check(isinstance(value, str), f"{where} must be a string, got {value!r}")
        return value
    return value


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass `cls` from `data`, rejecting unknown keys with the nearest valid name."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            if path in LEGACY_KEYS:
                raise ConfigError(f"config key '{path}' is '{LEGACY_KEYS[path]}' now; rename it (a run or "
                                  f"checkpoint saved with the old key still loads through --resume / --checkpoint)")
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown config key '{path}'{hint} Valid keys here: {', '.join(names)}")
        kwargs[key] = _coerce(value, hints[key], path)
    return cls(**kwargs)


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        _check(isinstance(node, dict), f"override '{dotted}': '{part}' is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'model.dim=512' -> ('model.dim', 512). The value is parsed as YAML."""
    _check("=" in text, f"override {text!r} must look like section.key=value (e.g. train.lr=3e-4)")
    key, raw = text.split("=", 1)
    value = strict_yaml_load(raw, f"override {text!r}") if raw.strip() else ""
    return key.strip(), value


def resolve_config_path(name_or_path: str) -> Path:
    """A named config ('simple') or a YAML path -> the YAML path."""
    if name_or_path in NAMED_CONFIGS:
        return CONFIG_DIR / NAMED_CONFIGS[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path
    raise ConfigError(
        f"config '{name_or_path}' is neither a named config ({', '.join(NAMED_CONFIGS)}) "
        f"nor an existing YAML file")


class _StrictYAMLLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping. Plain YAML keeps the last
    one without a word: a second `train:` section would replace the whole first one, and the
    run would train a recipe nobody wrote."""

    source = "<string>"

    def construct_mapping(self, node, deep=False):
        first_line: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may repeat keys on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = key in first_line
            except TypeError:  # an unhashable key: the base class reports it
                continue
            line = key_node.start_mark.line + 1
            if seen:
                raise ConfigError(f"{self.source}: key '{key}' is given twice in one mapping, at lines "
                                  f"{first_line[key]} and {line}; YAML would keep only the second, so "
                                  f"merge the two into one")
            first_line[key] = line
        return super().construct_mapping(node, deep)


def strict_yaml_load(text: str, source: str = "<string>") -> Any:
    """yaml.safe_load that raises ConfigError (naming `source`, the key and both lines) for a key
    repeated at any nesting level. Every YAML the project reads goes through it."""
    loader = _StrictYAMLLoader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_config_dict(name_or_path: str, _chain: tuple = ()) -> dict:
    """The config's tree. A top-level `base: NAME` (a named config or a YAML path, relative to this
    file's folder) starts from that config's tree, which this file's keys then override section by
    section: a variant states only what it changes (configs/train_libero_cpu_geometry.yaml)."""
    path = resolve_config_path(name_or_path)
    try:
        tree = strict_yaml_load(path.read_text(), str(path)) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    _check(isinstance(tree, dict), f"{path} must hold a mapping with sections model/data/train")
    base = tree.pop("base", None)
    if base is None:
        return tree
    _check(isinstance(base, str), f"{path}: base must name one config, got {base!r}")
    here = path.resolve()
    _check(here not in _chain, f"{path}: its base chain comes back to itself ({' -> '.join(map(str, _chain))})")
    relative = path.parent / base
    parent = load_config_dict(str(relative) if base not in NAMED_CONFIGS and relative.is_file() else base,
                              _chain + (here,))
    return _merged(parent, tree)


def _merged(base: dict, over: dict) -> dict:
    """`base` with `over`'s keys replacing its own; nested mappings merge key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(name_or_path: str, overrides: Optional[list[str]] = None, saved: bool = False) -> Config:
    """Load a named config or YAML file, apply `section.key=value` overrides, validate.
    saved: the file is a run's config.yaml, which may hold an older version's keys (LEGACY_KEYS)."""
    tree = load_config_dict(name_or_path)
    if saved:
        tree = upgrade_saved_config(tree)
    for text in overrides or []:
        key, value = parse_override(text)
        _set_path(tree, key, value)
    return from_dict(Config, tree)


def load_config_or_report(name_or_path: str, overrides: Optional[list[str]] = None,
                          saved: bool = False) -> Optional[Config]:
    """For scripts: the config, or None after printing the ConfigError to stderr."""
    import sys

    try:
        return load_config(name_or_path, overrides, saved)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return None


def config_from_dict(tree: dict, saved: bool = False) -> Config:
    """A Config from its tree; saved: the tree was saved by a run (a checkpoint's), perhaps by an
    older version (upgrade_saved_config)."""
    return from_dict(Config, upgrade_saved_config(tree) if saved else tree)


# Keys of older versions -> where they live now. Runs and checkpoints saved then hold the old
# keys; upgrade_saved_config moves them, so those runs still load, evaluate and resume. A config
# file written by hand is read as it is, and an old key there is refused naming the new one.
LEGACY_KEYS = {
    # The live-scene options, flat in data: until they became the data.live section.
    "data.live_expert": "data.live.enabled",
    "data.live_frame_stride": "data.live.frame_stride",
    "data.live_action_noise": "data.live.action_noise",
    "data.live_noise_correlation": "data.live.action_noise_correlation",
    "data.live_shared_colour": "data.live.shared_colour",
}


def upgrade_saved_config(tree: dict) -> dict:
    """A copy of a saved config's tree with every LEGACY_KEYS key moved to its current place."""
    tree = copy.deepcopy(tree)
    for old, new in LEGACY_KEYS.items():
        *old_sections, old_key = old.split(".")
        node = tree
        for section in old_sections:
            node = node.get(section) if isinstance(node, dict) else None
        if not isinstance(node, dict) or old_key not in node:
            continue
        value = node.pop(old_key)
        *new_sections, new_key = new.split(".")
        target = tree
        for section in new_sections:
            target = target.setdefault(section, {})
            _check(isinstance(target, dict), f"saved config: '{section}' of '{new}' is not a section")
        _check(new_key not in target, f"saved config gives both '{old}' (an older version's key) and '{new}'; "
                                      f"keep '{new}'")
        target[new_key] = value
    return tree
