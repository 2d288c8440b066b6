"""Camera images -> vision tokens [B, V*h*w, D], with the patch grid (h, w) for the graph builder.

Three ways to turn one image into patch features, chosen by VisionConfig:

* PatchEmbedding  - Conv2d patchify (or a small conv stem) + fixed 2-D sin-cos positions,
                    trained from scratch;
* HFVisionTower   - a pretrained transformers tower (DINOv2, CLIP, SigLIP vision models);
* TimmVisionTower - a pretrained timm ViT ("timm/<name>", e.g. timm/vit_small_patch14_dinov2).

VisionEncoder runs the chosen one on every camera, projects to the fusion width D and adds a
learned per-camera embedding so the backbone can tell the agent view from the wrist view.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
import torch.nn as nn

from vggt_vla.config import VisionConfig
from vggt_vla.models.layers import freeze
from vggt_vla.models.pretrained import (PretrainedUnavailable, hub_reachable, known_config, load_or_raise,
                                       train_keeping_frozen)

TIMM_PREFIX = "timm/"

# Pixel normalisation each tower family was trained with (from their preprocessor configs).
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
PIXEL_STATS = {
    "dinov2": IMAGENET,
    "dinov2_with_registers": IMAGENET,
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "clip_vision_model": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "siglip": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "siglip_vision_model": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


@dataclass
class VisionOutput:
    tokens: torch.Tensor  # [B, V*h*w, D]
    grid: tuple[int, int]  # (h, w) patches per camera


def sincos_2d(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding -> [h*w, dim]; half the channels encode the row."""
    assert dim % 4 == 0, f"2-D sin-cos positions need dim divisible by 4, got {dim}"
    quarter = dim // 4
    freqs = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))  # [dim/4]
    rows, cols = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                                torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    r = rows.reshape(-1, 1) * freqs  # [h*w, dim/4]
    c = cols.reshape(-1, 1) * freqs  # [h*w, dim/4]
    return torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=1)  # [h*w, dim]


def conv_stem(patch_size: int, dim: int) -> nn.Sequential:
    """3x3 stride-2 convolutions down to one cell per patch, then a 1x1 projection to dim
    ("early convolutions", Xiao et al. 2021). Unlike a linear patchify, the features of a small
    object (its shape, its edges) do not depend on where the patch borders cut it."""
    layers, width_in = [], 3
    n = patch_size.bit_length() - 1  # patch_size is a power of 2 (checked by VisionConfig)
    for i in range(n):
        width = max(16, dim >> (n - 1 - i))  # ..., dim/4, dim/2, dim
        layers += [nn.Conv2d(width_in, width, kernel_size=3, stride=2, padding=1), nn.GELU()]
        width_in = width
    layers.append(nn.Conv2d(width_in, dim, kernel_size=1))
    return nn.Sequential(*layers)


class PooledDetectors(nn.Module):
    """Small local detectors, max-pooled over each patch: [N, 3, H, W] -> [N, dim, h, w].

        3x3 conv (8) -> GELU -> max 2x2 -> 3x3 conv (width) -> GELU -> max over the rest of the patch -> 1x1 to dim

    A linear patchify's features of a small object depend on where the patch borders cut it, so
    "a cube" and "a ball" at two offsets are four unrelated vectors, and no linear score of them
    tells the shapes apart. The max makes a patch's feature say *what* small pattern it holds
    (a corner, a round edge), wherever it sits in the patch (docs/experiments/2026-12-01-demo-recipe.md:
    with it, a keypoint learns to find "the blue cube" next to a blue ball; without it, never).
    The first max halves the resolution early, which makes the branch 3x cheaper than two
    full-resolution convolutions and learned the same."""

    def __init__(self, patch_size: int, dim: int, width: int = 16):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
                                   nn.Conv2d(8, width, 3, padding=1), nn.GELU())
        self.pool = nn.MaxPool2d(patch_size // 2)
        self.out = nn.Conv2d(width, dim, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # Channels-last: on a CPU, oneDNN's convolutions and pooling with so few channels run
        # ~1.5x faster on NHWC (docs/experiments/2026-12-06-demo-on-avx2.md); same values.
        pixels = pixels.contiguous(memory_format=torch.channels_last)  # [N, 3, H, W], NHWC in memory
        return self.out(self.pool(self.convs(pixels)))  # [N, dim, h, w]


class PatchEmbedding(nn.Module):
    """Patchify (a linear Conv2d, or a small conv stem) + 2-D sin-cos positions. Any image size
    divisible by the patch size."""

    def __init__(self, patch_size: int, dim: int, stem: str = "linear"):
        super().__init__()
        self.patch_size = patch_size
        self.out_dim = dim
        if stem == "conv":
            self.proj = conv_stem(patch_size, dim)
        else:
            self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.detectors = PooledDetectors(patch_size, dim) if stem == "linear_pool" else None
        # ImageNet statistics: a sane centring for pixels in [0, 1] even when training from scratch.
        mean, std = IMAGENET
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        pixels = (images - self.mean) / self.std  # [N, 3, H, W]
        x = self.proj(pixels)  # [N, D, h, w]
        if self.detectors is not None:
            x = x + self.detectors(pixels)  # [N, D, h, w]
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)  # [N, h*w, D]
        return x + sincos_2d(h, w, x.shape[-1], x.device).to(x.dtype), (h, w)  # [N, h*w, D]


class HFVisionTower(nn.Module):
    """A transformers vision model; returns its patch tokens (CLS/register tokens dropped)."""

    def __init__(self, name: str, random_weights: bool = False):
        super().__init__()
        from transformers import AutoModel

        if random_weights:
            model = AutoModel.from_config(known_config(name))
        else:
            model = load_or_raise(AutoModel.from_pretrained, name, "vision tower")
        # CLIP/SigLIP checkpoints hold text and vision towers; keep the vision one.
        self.model = getattr(model, "vision_model", model)
        config = self.model.config
        self.patch_size = config.patch_size
        self.out_dim = config.hidden_size
        model_type = getattr(config, "model_type", "")
        mean, std = PIXEL_STATS.get(model_type, IMAGENET)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        # CLIP/SigLIP only resample their position table at another resolution when asked to.
        self._interp = "interpolate_pos_encoding" in inspect.signature(self.model.forward).parameters

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        H, W = images.shape[-2:]
        h, w = H // self.patch_size, W // self.patch_size
        kwargs = {"interpolate_pos_encoding": True} if self._interp else {}
        pixels = (images - self.mean) / self.std  # [N, 3, H, W]
        out = self.model(pixel_values=pixels, **kwargs).last_hidden_state  # [N, prefix + h*w, C]
        return out[:, out.shape[1] - h * w:], (h, w)  # [N, h*w, C]


def _check_timm_weights_reachable(model_name: str) -> None:
    """Fail at once, instead of after timm's network retries, when the hub is down and the
    weights are not in the local cache."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    if hub_reachable():
        return
    cfg = timm.models.get_pretrained_cfg(model_name)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    files = ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors")
    if repo and any(isinstance(try_to_load_from_cache(repo, f), str) for f in files):
        return
    raise PretrainedUnavailable(
        f"timm weights for '{model_name}' (hub repo {repo}) are not in the local cache and the hub is "
        f"unreachable. Download them on a machine with internet, or use --random-weights to inspect "
        f"the architecture.")


class TimmVisionTower(nn.Module):
    """A timm ViT built by name (``timm/<model_name>``); returns its patch tokens."""

    def __init__(self, name: str, image_size: int, random_weights: bool = False):
        super().__init__()
        try:
            import timm
        except ImportError as err:
            raise ImportError("timm is needed for 'timm/...' vision towers: pip install timm") from err
        model_name = name[len(TIMM_PREFIX):]
        if not random_weights:
            _check_timm_weights_reachable(model_name)
        try:
            self.model = timm.create_model(model_name, pretrained=not random_weights,
                                           num_classes=0, img_size=image_size)
        except RuntimeError as err:  # timm reports unknown names as RuntimeError
            raise PretrainedUnavailable(f"timm could not build '{model_name}': {err}") from err
        except OSError as err:  # weights not downloadable / not cached
            raise PretrainedUnavailable(
                f"timm could not load weights for '{model_name}': {err}. Use --random-weights to "
                f"inspect the architecture, or make the weights available in the HF cache.") from err
        self.patch_size = self.model.patch_embed.patch_size[0]
        self.out_dim = self.model.num_features
        cfg = self.model.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg.get("mean", IMAGENET[0])).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", IMAGENET[1])).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        H, W = images.shape[-2:]
        h, w = H // self.patch_size, W // self.patch_size
        out = self.model.forward_features((images - self.mean) / self.std)  # [N, prefix + h*w, C]
        return out[:, self.model.num_prefix_tokens:], (h, w)  # [N, h*w, C]


class VisionEncoder(nn.Module):
    """[B, V, 3, H, W] in [0, 1] -> VisionOutput(tokens [B, V*h*w, D], grid (h, w))."""

    def __init__(self, cfg: VisionConfig, dim: int, random_weights: bool = False):
        super().__init__()
        self.cfg = cfg
        if not cfg.use_vision_tower:
            self.backbone = PatchEmbedding(cfg.patch_size, dim, cfg.patch_stem)
        elif cfg.vision_tower_name.startswith(TIMM_PREFIX):
            self.backbone = TimmVisionTower(cfg.vision_tower_name, cfg.image_size, random_weights)
        else:
            self.backbone = HFVisionTower(cfg.vision_tower_name, random_weights)
        self.frozen = cfg.use_vision_tower and cfg.freeze_vision_tower
        if self.frozen:
            freeze(self.backbone)
        out_dim = self.backbone.out_dim
        self.proj = nn.Identity() if not cfg.use_vision_tower and out_dim == dim else nn.Linear(out_dim, dim)
        self.camera_embed = nn.Parameter(torch.randn(cfg.num_cameras, dim) * 0.02)  # [V_max, D]
        # Optional store of frozen tower features by dataset frame, attached by the trainer
        # (training/feature_cache.py): fetch(frame_ids, compute, device) -> features.
        self.feature_cache = None

    @property
    def patch_size(self) -> int:
        return self.backbone.patch_size

    def train(self, mode: bool = True):
        return train_keeping_frozen(self, mode, self.backbone if self.frozen else None)

    def _tower(self, flat: torch.Tensor, frame_ids, B: int, V: int):
        """Frozen tower features [B*V, h*w, C_t], from the feature cache where it has them."""
        p = self.patch_size
        grid = (flat.shape[-2] // p, flat.shape[-1] // p)
        on_gpu = flat.device.type == "cuda"  # frozen: bf16 costs no training signal, halves the time
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu):
            if self.feature_cache is None or frame_ids is None:
                return self.backbone(flat)
            per_sample = flat.view(B, V, *flat.shape[1:])  # [B, V, 3, H, W]

            def compute(miss: torch.Tensor) -> torch.Tensor:
                new, _ = self.backbone(per_sample[miss].flatten(0, 1))  # [m*V, h*w, C]
                return new.view(-1, V, *new.shape[1:])  # [m, V, h*w, C]

            feats = self.feature_cache.fetch(frame_ids, compute, flat.device)  # [B, V, h*w, C]
            return feats.flatten(0, 1), grid  # [B*V, h*w, C]

    def forward(self, images: torch.Tensor, frame_ids=None) -> VisionOutput:
        """frame_ids [B] (dataset rows), optional: lets a frozen tower use the feature cache."""
        B, V, C, H, W = images.shape
        if V > self.cfg.num_cameras:
            raise ValueError(f"batch has {V} cameras but model.vision.num_cameras={self.cfg.num_cameras}")
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f"image size {H}x{W} is not a multiple of the patch size {p}; resize "
                             f"the images (model.vision.image_size) to a multiple of {p}")
        flat = images.reshape(B * V, C, H, W)  # [B*V, 3, H, W]
        if self.frozen:
            feats, (h, w) = self._tower(flat, frame_ids, B, V)  # [B*V, h*w, C_t], no autograd graph
        else:
            feats, (h, w) = self.backbone(flat)  # [B*V, h*w, C_t]
        tokens = self.proj(feats.float()).view(B, V, h * w, -1)  # [B, V, h*w, D]
        tokens = tokens + self.camera_embed[:V, None, :]  # [B, V, h*w, D]
        return VisionOutput(tokens=tokens.reshape(B, V * h * w, -1), grid=(h, w))

