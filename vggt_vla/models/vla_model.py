"""VLAModel: the whole policy network, composed top-down.

    images [B,V,3,H,W] -> VisionEncoder   -> vision tokens   [B, V*h*w, D] + type 0
                          (optional FiLM by the pooled instruction: model.language_film)
    instruction        -> LanguageEncoder -> language tokens [B, L, D]     + type 1   (+ mask)
    state [B,S]        -> Linear          -> state token     [B, 1, D]     + type 2   (optional)
    action queries     (learned)          ->                 [B, Q, D]     + type 3
        -> backbone (simple | vggt) -> query outputs [B, Q, D] ─┐
    vision tokens -> SpatialKeypoints (optional) -> [B, V, D] ──┴─> action head -> [B, T, A]

Training with model.goal_loss_weight adds an L1 loss on a linear prediction, from what the action
head reads (or, model.goal_from: keypoint, from one keypoint, the state and the instruction), of
the state at the episode's last frame (batch["goal_state"]); the head is unused at inference.
Training with model.geometry_alignment adds weight * (1 - cos) between the backbone's vision tokens
after one layer and a frozen VGGT teacher's features (models/geometry.py); the teacher is
built only when VLAModel is asked for it (geometry_teacher=True, the trainer), never at inference.
Training with model.geometry_target adds an L1 loss between a small head's per-patch prediction from
the vision tokens after one layer and the recorded 3-D points / depth (batch["geometry"],
models/geometry_head.py); predict_action_chunk never calls the head.
With vggt.fusion: inject no vision encoder is built: VGGT alone reads the pixels.

A batch is a dict: ``images`` [B,V,3,H,W] float in [0,1], ``instruction`` list[str] (one per sample), optional
``state`` [B,S]; for training ``actions`` [B,T,A] and ``action_pad_mask`` [B,T] (True = padded
step, excluded from the loss). State and actions are expected normalised (the data layer does it).
Datasets also add ``row`` [B] (dataset rows), used only by the frozen-feature cache.

    python scripts/test_model.py --config simple     # build, run, print shapes and counts
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from vggt_vla.config import ModelConfig
from vggt_vla.models.action_head import build_action_head
from vggt_vla.models.film import LanguageFiLM, pool_instruction
from vggt_vla.models.geometry import GeometryAlignment
from vggt_vla.models.geometry_head import GeometryHead
from vggt_vla.models.keypoints import SpatialKeypoints
from vggt_vla.models.language_encoder import LanguageEncoder
from vggt_vla.models.simple_backbone import SimpleBackbone
from vggt_vla.models.tokens import ACTION_QUERY, LANGUAGE, NUM_TOKEN_TYPES, STATE, VISION, FusionInputs
from vggt_vla.models.vggt_adapter import VGGTAdapter
from vggt_vla.models.vision_encoder import VisionEncoder


def build_backbone(cfg: ModelConfig, random_weights: bool = False) -> nn.Module:
    if cfg.backbone == "simple":
        return SimpleBackbone(cfg.dim, cfg.simple_backbone)
    return VGGTAdapter(cfg.dim, cfg.vggt, cfg.vision.num_cameras, random_weights)


class VLAModel(nn.Module):
    def __init__(self, cfg: ModelConfig, random_weights: bool = False, geometry_teacher: bool = False):
        """random_weights: build pretrained parts from their known configs without loading
        weights (inspection only; see vggt_vla.models.pretrained).
        geometry_teacher: also build the frozen VGGT teacher of model.geometry_alignment (training
        only; without it the alignment loss is not computed)."""
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg, random_weights)
        self.vision = VisionEncoder(cfg.vision, cfg.dim, random_weights) if cfg.uses_vision_encoder else None
        self.language = LanguageEncoder(cfg.language, cfg.dim, random_weights)
        self.film = LanguageFiLM(cfg.dim) if cfg.language_film else None
        self.state_proj = nn.Linear(cfg.state_dim, cfg.dim) if cfg.state_dim > 0 else None
        self.token_type = nn.Embedding(NUM_TOKEN_TYPES, cfg.dim)
        self.action_queries = nn.Parameter(torch.randn(cfg.num_action_queries, cfg.dim) * 0.02)  # [Q, D]
        self.keypoints = SpatialKeypoints(cfg.dim, cfg.spatial_keypoints) if cfg.spatial_keypoints else None
        num_cond = cfg.num_action_queries + (cfg.vision.num_cameras if self.keypoints is not None else 0)
        self.head = build_action_head(cfg.action_head, cfg.dim, num_cond)
        # Auxiliary, training only: where the episode ends, read from all the head's inputs at once,
        # or (goal_from: keypoint) from the agent camera's first keypoint, the state and the instruction.
        self.goal_head = None
        if cfg.goal_loss_weight:
            goal_in = (num_cond * cfg.dim if cfg.goal_from == "head_inputs"
                       else 2 + cfg.state_dim + cfg.dim)
            self.goal_head = nn.Linear(goal_in, cfg.state_dim)
        align = cfg.geometry_alignment
        self.alignment = (GeometryAlignment(align, cfg.dim, geometry_teacher, random_weights)
                          if align.enabled else None)
        # Auxiliary, training only: recorded depth / 3-D points per patch (models/geometry_head.py).
        self.geometry_head = (GeometryHead(cfg.geometry_target, cfg.dim) if cfg.geometry_target.enabled else None)

    @property
    def geometry_teacher(self):
        """The frozen VGGT teacher when this model was built for training with alignment, else None."""
        return None if self.alignment is None else self.alignment.teacher

    # ---------------------------------------------------------------- batch checks
    def _check_batch(self, batch: dict, training: bool) -> None:
        for key in ("images", "instruction") + (("actions", "action_pad_mask") if training else ()):
            if key not in batch:
                raise KeyError(f"batch has no '{key}' (keys: {sorted(batch)}); see VLAModel's docstring")
        images = batch["images"]
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f"batch['images'] must be [B, V, 3, H, W], got {tuple(images.shape)}")
        B = images.shape[0]
        if len(batch["instruction"]) != B:
            raise ValueError(f"{len(batch['instruction'])} instructions for a batch of {B} images")
        if self.state_proj is not None:
            state = batch.get("state")
            if state is None or state.shape != (B, self.cfg.state_dim):
                got = None if state is None else tuple(state.shape)
                raise ValueError(f"batch['state'] must be [B={B}, model.state_dim={self.cfg.state_dim}], "
                                 f"got {got}; set model.state_dim to the dataset's state size (0: no state)")
        if training:
            head = self.cfg.action_head
            want = (B, head.chunk_size, head.action_dim)
            if tuple(batch["actions"].shape) != want:
                raise ValueError(f"batch['actions'] is {tuple(batch['actions'].shape)} but the model predicts "
                                 f"[B, action_head.chunk_size, action_head.action_dim] = {list(want)}; "
                                 f"make the config match the dataset")
            if tuple(batch["action_pad_mask"].shape) != want[:2]:
                raise ValueError(f"batch['action_pad_mask'] must be {list(want[:2])}, "
                                 f"got {tuple(batch['action_pad_mask'].shape)}")

    # ---------------------------------------------------------------- encoding
    def fusion_inputs(self, batch: dict, language_features: Optional[tuple] = None) -> FusionInputs:
        """language_features: (hidden [B, L, H], mask [B, L]) that the language model made of the
        instructions (LanguageEncoder.features), given instead of batch["instruction"]."""
        images = batch["images"]  # [B, V, 3, H, W]
        B = images.shape[0]
        types = self.token_type.weight  # [4, D]
        if language_features is None:
            language, language_mask = self.language(batch["instruction"])  # [B, L, D], [B, L]
        else:
            hidden, language_mask = language_features  # [B, L, H], [B, L]
            language = self.language.proj(hidden)  # [B, L, D]
        vision_tokens, grid = None, None  # vggt.fusion: inject builds no vision encoder
        if self.vision is not None:
            vision = self.vision(images, batch.get("row"))
            vision_tokens, grid = vision.tokens, vision.grid  # [B, V*h*w, D]
            if self.film is not None:
                vision_tokens = self.film(vision_tokens, language, language_mask)  # [B, V*h*w, D]
            vision_tokens = vision_tokens + types[VISION]  # [B, V*h*w, D]
        state = None
        if self.state_proj is not None:
            state = self.state_proj(batch["state"].float())[:, None, :] + types[STATE]  # [B, 1, D]
        queries = self.action_queries.expand(B, -1, -1) + types[ACTION_QUERY]  # [B, Q, D]
        return FusionInputs(
            images=images,
            vision=vision_tokens,  # [B, V*h*w, D], or None
            grid=grid,
            language=language + types[LANGUAGE],  # [B, L, D]
            language_mask=language_mask,
            state=state,
            queries=queries,
        )

    def encode(self, batch: dict) -> torch.Tensor:
        """batch -> what the action head reads (see head_inputs)."""
        return self.head_inputs(self.fusion_inputs(batch))

    def head_inputs(self, inputs: FusionInputs) -> torch.Tensor:
        """Fused tokens -> what the action head reads: the action-query outputs [B, Q, D], followed
        by one keypoint token per camera slot [B, V_max, D] when model.spatial_keypoints > 0."""
        return self._with_keypoints(self.backbone(inputs), self._keypoints(inputs))

    def _keypoints(self, inputs: FusionInputs) -> Optional[torch.Tensor]:
        """[B, V, K, 2] keypoints of the cameras in the batch, or None without model.spatial_keypoints."""
        if self.keypoints is None:
            return None
        return self.keypoints.keypoints(inputs.vision, inputs.grid, inputs.num_cameras)  # [B, V, K, 2]

    def _with_keypoints(self, cond: torch.Tensor, points: Optional[torch.Tensor]) -> torch.Tensor:
        if points is None:
            return cond
        tokens = self.keypoints.to_token(points.flatten(2))  # [B, V, D]
        missing = self.cfg.vision.num_cameras - points.shape[1]  # a batch may carry fewer cameras
        if missing:
            tokens = torch.cat([tokens, tokens.new_zeros(tokens.shape[0], missing, tokens.shape[2])], dim=1)
        return torch.cat([cond, tokens], dim=1)  # [B, Q + V_max, D]

    # ---------------------------------------------------------------- API
    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Training: batch with actions -> (scalar loss, metrics of detached tensors)."""
        self._check_batch(batch, training=True)
        inputs = self.fusion_inputs(batch)
        points = self._keypoints(inputs)  # [B, V, K, 2] or None
        align_loss = geometry_loss = None
        if self.geometry_teacher is not None:
            queries, student = self.backbone.run(inputs, self.cfg.geometry_alignment.student_layer)
            align_loss = self.alignment.loss(student, inputs.grid, inputs.images, batch.get("row"))
        elif self.geometry_head is not None:
            queries, tapped = self.backbone.run(inputs, self.cfg.geometry_target.layer)
            geometry_loss = self.geometry_head.loss(tapped, inputs.grid, batch)
        else:
            queries = self.backbone(inputs)  # [B, Q, D]
        cond = self._with_keypoints(queries, points)  # [B, Q (+ V_max), D]
        pad_mask = batch["action_pad_mask"].bool()  # [B, T]
        loss, metrics = self.head.loss(cond, batch["actions"].float(), pad_mask)
        parts = {}  # auxiliary losses: name -> (weight, loss)
        if self.goal_head is not None:
            parts["goal_loss"] = (self.cfg.goal_loss_weight, self._goal_loss(cond, points, inputs, batch))
        if align_loss is not None:
            parts["align_loss"] = (self.cfg.geometry_alignment.weight, align_loss)
        if geometry_loss is not None:
            parts["geometry_loss"] = (self.cfg.geometry_target.weight, geometry_loss)
        if parts:
            metrics = {**metrics, "action_loss": loss.detach(), **{k: v.detach() for k, (_, v) in parts.items()}}
        for weight, part in parts.values():
            loss = loss + weight * part
        return loss, {"loss": loss.detach(), **metrics}

    def _goal_loss(self, cond: torch.Tensor, points: Optional[torch.Tensor], inputs: FusionInputs,
                   batch: dict) -> torch.Tensor:
        """L1 between the predicted and the episode's last state (normalised), mean over dims."""
        goal = batch.get("goal_state")
        if goal is None:
            raise KeyError("model.goal_loss_weight > 0 needs batch['goal_state'] (the state at the episode's "
                           "last frame, which FrameDataset items carry); batch a FrameDataset or set "
                           "model.goal_loss_weight: 0")
        if goal.shape != (cond.shape[0], self.cfg.state_dim):
            raise ValueError(f"batch['goal_state'] must be [B, model.state_dim={self.cfg.state_dim}], "
                             f"got {tuple(goal.shape)}")
        if self.cfg.goal_from == "head_inputs":
            features = cond.flatten(1)  # [B, (Q + V_max) * D]
        else:
            point = points[:, 0, 0]  # [B, 2]: the first camera's first keypoint
            language = pool_instruction(inputs.language, inputs.language_mask)  # [B, D]
            features = torch.cat([point, batch["state"].to(point.dtype), language.to(point.dtype)], dim=1)  # [B, 2+S+D]
        pred = self.goal_head(features)  # [B, S]
        return (pred.float() - goal.float()).abs().mean()

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Inference: batch without actions -> normalised action chunk [B, T, A].

        generator: seeds the flow-matching noise, for reproducible samples."""
        self._check_batch(batch, training=False)
        return self.head.predict(self.encode(batch), generator)

    def predict_from_features(self, images: torch.Tensor, state: Optional[torch.Tensor], language: torch.Tensor,
                              language_mask: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """predict_action_chunk with the language model's features of the instructions given
        (LanguageEncoder.features: hidden [B, L, H], mask [B, L]) and, for flow matching, the
        initial noise [B, T, A] (head.initial_noise): the inference graph that vggt_vla/export.py
        writes to ONNX, with the language model left outside. images [B, V, 3, H, W] in [0, 1],
        state [B, S] normalised (None without model.state_dim) -> normalised chunk [B, T, A]."""
        inputs = self.fusion_inputs({"images": images, "state": state}, language_features=(language, language_mask))
        return self.head.predict(self.head_inputs(inputs), noise=noise)

    def compile_blocks(self, **kwargs) -> int:
        """torch.compile the transformer blocks and the action head, in place (state_dict keys
        unchanged). The rest (tokenizer, feature cache, graph matrices cached per shape) stays
        eager: compiling the whole forward breaks the graph there and recompiles every step.
        Returns the number of modules compiled."""
        from vggt_vla.models.layers import TransformerBlock

        targets = [m for m in self.modules() if isinstance(m, TransformerBlock)] + [self.head]
        for module in targets:
            module.compile(**kwargs)
        return len(targets)

    def pretrained_parts(self) -> dict[str, str]:
        """{module prefix: source} of the frozen parts loaded from pretrained weights.

        Checkpoints leave these out and rebuilding the model reloads them from the source; a
        pretrained part that is fine-tuned is not listed, so its weights are saved."""
        cfg = self.cfg
        parts = {}
        if self.vision is not None and cfg.vision.use_vision_tower and self.vision.frozen:
            parts["vision.backbone"] = cfg.vision.vision_tower_name
        if self.language.frozen:
            parts["language.model"] = self.language.model_name
        if cfg.backbone == "vggt" and cfg.vggt.use_pretrained_vggt and cfg.vggt.freeze_vggt:
            parts["backbone.aggregator"] = cfg.vggt.checkpoint
        if self.geometry_teacher is not None:  # always frozen
            parts["alignment.teacher"] = cfg.geometry_alignment.checkpoint
        return parts
