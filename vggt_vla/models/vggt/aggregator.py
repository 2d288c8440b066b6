"""The VGGT aggregator: DINOv2 patch tokens + alternating frame / global attention
(facebookresearch/vggt, ported weight-exact).

images [B, S, 3, H, W] in [0, 1]
  -> ImageNet normalisation (done here, callers pass raw RGB)
  -> DINOv2 ViT patch tokens                                   [B*S, h*w, C]
  -> prepend camera + R register tokens (slot 0: frame 0, slot 1: other frames)  [B*S, P, C]
  -> depth x (frame block over each frame, global block over each scene), 2-D RoPE in every block
  -> per layer: concat(frame output, global output)             [B, S, P, 2C]

Weights load strictly from the reference checkpoint once this module sits at attribute `aggregator`
of a parent module (or after stripping the `aggregator.` prefix); see `checkpoint.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .layers import Block
from .rope import RotaryAngles, patch_positions
from .vit import VIT_PRESETS, DinoViT, PatchEmbed

# ImageNet statistics; the reference keeps them as float32 constants.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

AGGREGATOR_NORM_EPS = 1e-5  # blocks and qk-norm (the ViT uses 1e-6)


class Aggregator(nn.Module):
    """Alternating-attention trunk of VGGT. Defaults build VGGT-1B (909,112,320 parameters).

    Constructor arguments mirror the reference `Aggregator`; the keyword-only `vit_*` arguments override
    the patch-embed ViT's dims implied by `patch_embed` (used to build small test models).
    """

    def __init__(
        self,
        img_size: int = 518,
        patch_size: int = 14,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_register_tokens: int = 4,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        patch_embed: str = "dinov2_vitl14_reg",
        aa_order: Sequence[str] = ("frame", "global"),
        aa_block_size: int = 1,
        qk_norm: bool = True,
        rope_freq: float = 100,
        init_values: float = 0.01,
        *,
        vit_embed_dim: int | None = None,
        vit_depth: int | None = None,
        vit_num_heads: int | None = None,
        vit_mlp_ratio: float | None = None,
        vit_init_values: float = 1.0,
    ):
        super().__init__()
        aa_order = list(aa_order)
        if sorted(aa_order) != ["frame", "global"]:
            raise ValueError(f"aa_order must be an ordering of ['frame', 'global'], got {aa_order}")
        if depth % aa_block_size != 0:
            raise ValueError(f"depth {depth} must be divisible by aa_block_size {aa_block_size}")
        if rope_freq <= 0:
            # The reference drops RoPE here but its forward then crashes; RoPE is effectively mandatory.
            raise ValueError(f"rope_freq must be > 0 (VGGT always uses RoPE), got {rope_freq}")
        if embed_dim % num_heads != 0 or (embed_dim // num_heads) % 4 != 0:
            raise ValueError(f"embed_dim/num_heads = {embed_dim}/{num_heads} must give a head dim divisible by 4")

        self.patch_size = patch_size
        self.depth = depth
        self.num_heads = num_heads
        self.aa_order = aa_order
        self.aa_block_size = aa_block_size
        self.rope_freq = float(rope_freq)
        self.num_register_tokens = num_register_tokens
        self.patch_start_idx = 1 + num_register_tokens  # camera token + registers come first

        # Own parameters are registered before submodules so the state_dict order matches the reference.
        # Slot 0 is for the first frame of every scene, slot 1 for all other frames.
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, embed_dim) * 1e-6)  # [1, 2, 1, C]
        self.register_token = nn.Parameter(torch.randn(1, 2, num_register_tokens, embed_dim) * 1e-6)  # [1, 2, R, C]
        self.patch_embed = self._build_patch_embed(
            patch_embed, img_size, patch_size, embed_dim, num_register_tokens,
            qkv_bias, proj_bias, ffn_bias, vit_embed_dim, vit_depth, vit_num_heads, vit_mlp_ratio,
            vit_init_values,
        )

        def make_block() -> Block:
            return Block(embed_dim, num_heads, mlp_ratio, qkv_bias, proj_bias, ffn_bias,
                         qk_norm=qk_norm, norm_eps=AGGREGATOR_NORM_EPS, init_values=init_values)

        self.frame_blocks = nn.ModuleList(make_block() for _ in range(depth))
        self.global_blocks = nn.ModuleList(make_block() for _ in range(depth))

    @staticmethod
    def _build_patch_embed(
        name, img_size, patch_size, embed_dim, num_register_tokens, qkv_bias, proj_bias, ffn_bias,
        vit_embed_dim, vit_depth, vit_num_heads, vit_mlp_ratio, vit_init_values,
    ) -> nn.Module:
        if "conv" in name:  # bare patchifier, as the reference accepts
            return PatchEmbed(patch_size, 3, embed_dim)
        if name not in VIT_PRESETS:
            raise ValueError(f"unknown patch_embed {name!r}; expected one of {sorted(VIT_PRESETS)} or a 'conv' name")
        d, n, h, r = VIT_PRESETS[name]
        d = vit_embed_dim if vit_embed_dim is not None else d
        if d != embed_dim:
            # The aggregator consumes the ViT's patch tokens directly, without a projection.
            raise ValueError(f"ViT width {d} must equal the aggregator embed_dim {embed_dim}")
        return DinoViT(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=d,
            depth=vit_depth if vit_depth is not None else n,
            num_heads=vit_num_heads if vit_num_heads is not None else h,
            mlp_ratio=vit_mlp_ratio if vit_mlp_ratio is not None else r,
            num_register_tokens=num_register_tokens,  # the reference uses R for both
            qkv_bias=qkv_bias,
            proj_bias=proj_bias,
            ffn_bias=ffn_bias,
            init_values=vit_init_values,
        )

    def _special_tokens(self, B: int, S: int) -> torch.Tensor:
        """Camera + register tokens for every frame, slot 0 for s = 0 and slot 1 for s >= 1."""
        special = torch.cat([self.camera_token, self.register_token], dim=2)  # [1, 2, 1+R, C]
        first, rest = special[:, :1], special[:, 1:]  # [1, 1, 1+R, C] each
        per_frame = torch.cat([first, rest.expand(-1, S - 1, -1, -1)], dim=1)  # [1, S, 1+R, C]
        return per_frame.expand(B, -1, -1, -1).reshape(B * S, *special.shape[2:])  # [B*S, 1+R, C]

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        # Float32 constants cast to the parameter dtype behave like the reference's float32 buffers
        # (which follow module.to(dtype)) without being buffers: nothing to materialise after building
        # on the meta device, and nothing extra in the state_dict.
        dtype = self.camera_token.dtype
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=images.device).to(dtype)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=images.device).to(dtype)
        return (images - mean.view(1, 1, 3, 1, 1)) / std.view(1, 1, 3, 1, 1)  # [B, S, 3, H, W]

    def forward(
        self, images: torch.Tensor, layer_indices: Sequence[int] | None = None
    ) -> tuple[list[torch.Tensor], int]:
        """Run the trunk.

        Args:
            images: `[B, S, 3, H, W]` RGB in [0, 1] (NOT ImageNet-normalised); H, W multiples of 14.
                Frame 0 of each scene is the reference frame.
            layer_indices: optional subset of layers to return (in the given order, negative indices
                allowed). Default: all `depth` layers, like the reference. Layers after the last one
                requested are not computed, and unrequested layers are not concatenated or kept.

        Returns:
            (list of `[B, S, P, 2C]` tensors, patch_start_idx) with P = 1 + R + h*w; channels 0..C-1
            are the frame-block output and C..2C-1 the global-block output of that layer.
        """
        layers, _ = self._run(images, self._resolve_layers(layer_indices))
        return layers, self.patch_start_idx

    def forward_with_injection(
        self,
        images: torch.Tensor,
        extra: torch.Tensor,
        extra_mask: torch.Tensor,
        first_layer: int,
        layer_indices: Sequence[int] | None = (-1,),
    ) -> tuple[list[torch.Tensor], int, torch.Tensor]:
        """Run the trunk with `extra` tokens [B, E, C] appended to the global-attention sequence of
        every global block from layer `first_layer` on (this is not part of the reference model).

        The extra tokens take RoPE position (0, 0), like the camera/register tokens, and skip the
        frame blocks. extra_mask [B, E] bool marks the real ones (padding is never attended to).
        Returns (layers as in forward, patch_start_idx, extra tokens after the last block [B, E, C]).
        The trunk runs to its last layer whatever `layer_indices` asks for.
        """
        if not 0 <= first_layer < self.depth:
            raise IndexError(f"first injected layer {first_layer} out of range for depth {self.depth}")
        wanted = self._resolve_layers(layer_indices)
        layers, extra = self._run(images, wanted, (extra, extra_mask, first_layer))
        return layers, self.patch_start_idx, extra

    def _run(self, images: torch.Tensor, wanted: list[int], injection=None):
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f"expected images [B, S, 3, H, W], got {tuple(images.shape)}")
        B, S, _, H, W = images.shape
        last_needed = self.depth - 1 if injection is not None else max(wanted)

        x = self._normalize(images).reshape(B * S, 3, H, W)  # [B*S, 3, H, W], frame index b*S + s
        patches = self.patch_embed(x)  # [B*S, h*w, C]
        tokens = torch.cat([self._special_tokens(B, S), patches], dim=1)  # [B*S, P, C]
        _, P, C = tokens.shape

        # Same positions for every frame; global attention just concatenates them (no frame index).
        pos = patch_positions(H // self.patch_size, W // self.patch_size, self.patch_start_idx,
                              images.device)  # [P, 2]
        head_dim = C // self.num_heads
        rope = {
            "frame": RotaryAngles(pos[None], head_dim, self.rope_freq),  # for [B*S, P, C]
            "global": RotaryAngles(pos.repeat(S, 1)[None], head_dim, self.rope_freq),  # for [B, S*P, C]
        }
        if injection is not None:
            extra, extra_mask, first_layer = injection  # [B, E, C], [B, E]
            E = extra.shape[1]
            pos_inj = torch.cat([pos.repeat(S, 1), pos.new_zeros(E, 2)])  # [S*P + E, 2]
            rope_inj = RotaryAngles(pos_inj[None], head_dim, self.rope_freq)
            mask_inj = torch.cat([extra_mask.new_ones(B, S * P), extra_mask.bool()], dim=1)  # [B, S*P + E]
        blocks = {"frame": self.frame_blocks, "global": self.global_blocks}
        shapes = {"frame": (B * S, P, C), "global": (B, S * P, C)}
        next_block = {"frame": 0, "global": 0}

        collected: dict[int, torch.Tensor] = {}
        layer = 0
        while layer <= last_needed:
            intermediates: dict[str, list[torch.Tensor]] = {}
            for kind in self.aa_order:
                tokens = tokens.reshape(shapes[kind])  # [B*S, P, C] or [B, S*P, C]
                intermediates[kind] = []
                for _ in range(self.aa_block_size):
                    block = blocks[kind][next_block[kind]]
                    if kind == "global" and injection is not None and next_block[kind] >= first_layer:
                        joined = torch.cat([tokens, extra.to(tokens.dtype)], dim=1)  # [B, S*P + E, C]
                        joined = block(joined, rope_inj, mask_inj)
                        tokens, extra = joined[:, :S * P], joined[:, S * P:]  # [B, S*P, C], [B, E, C]
                    else:
                        tokens = block(tokens, rope[kind])
                    next_block[kind] += 1
                    intermediates[kind].append(tokens.reshape(B, S, P, C))  # [B, S, P, C]
            for frame_out, global_out in zip(intermediates["frame"], intermediates["global"]):
                if layer in wanted:  # frame half first, whatever aa_order says
                    collected[layer] = torch.cat([frame_out, global_out], dim=-1)  # [B, S, P, 2C]
                layer += 1
        return [collected[i] for i in wanted], (extra if injection is not None else None)

    def _resolve_layers(self, layer_indices: Sequence[int] | None) -> list[int]:
        if layer_indices is None:
            return list(range(self.depth))
        out = []
        for i in layer_indices:
            j = i + self.depth if i < 0 else i
            if not 0 <= j < self.depth:
                raise IndexError(f"layer index {i} out of range for depth {self.depth}")
            out.append(j)
        if not out:
            raise ValueError("layer_indices must not be empty")
        return out
