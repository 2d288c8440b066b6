"""2-D rotary position embedding (RoPE) of the VGGT aggregator (as in facebookresearch/vggt).

Every token of a frame carries an integer (y, x) position: patch tokens sit at (row + 1, col + 1),
camera and register tokens at (0, 0), where the rotation is the identity. In a head vector of width D
the first D/2 dims are rotated by y and the last D/2 by x. Inside each half the pairing is
"rotate-half" (dims j and j + D/4 form a pair), not interleaved.

The module has no parameters or buffers, so it adds nothing to the state_dict.
"""

from __future__ import annotations

import torch


def patch_positions(
    h: int, w: int, num_special: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Integer (y, x) positions for one frame: `num_special` tokens at (0, 0), then the h x w grid.

    Returns int64 `[num_special + h*w, 2]`. Patches start at 1 so that they never share the
    identity rotation of the special tokens.
    """
    rows = torch.arange(1, h + 1, device=device)  # [h]
    cols = torch.arange(1, w + 1, device=device)  # [w]
    grid = torch.cartesian_prod(rows, cols)  # [h*w, 2], row-major: n = r*w + c
    special = torch.zeros(num_special, 2, dtype=torch.long, device=device)  # [R+1, 2]
    return torch.cat([special, grid], dim=0)  # [P, 2]


def _rotate_half(t: torch.Tensor) -> torch.Tensor:
    """(a, b) -> (-b, a) on the last dim, pairing dim j with dim j + n/2."""
    a, b = t.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class RotaryAngles:
    """Rotation angles for a fixed set of token positions, with cos/sin memoised per dtype.

    `positions` is int `[batch, N, 2]` (batch may be 1 to broadcast). Built once per forward pass and
    shared by every block of one kind (all use the same positions), so the trigonometry is not
    recomputed for each of the 48 blocks. Numerics follow the reference: inverse frequencies and
    angles in float32 whatever the working dtype, then the angles are cast to the q/k dtype and cos/sin
    are taken in that dtype.
    """

    def __init__(self, positions: torch.Tensor, head_dim: int, base: float = 100.0):
        if head_dim % 4 != 0:
            raise ValueError(f"2-D RoPE needs a head dim divisible by 4, got {head_dim}")
        d = head_dim // 2  # width of one (y or x) half
        exponents = torch.arange(0, d, 2, dtype=torch.float32, device=positions.device) / d  # [d/2]
        inv_freq = 1.0 / (base ** exponents)  # [d/2], omega_j = base^(-2j/d)
        pos = positions.to(torch.float32)  # [..., N, 2]
        # One angle per (token, axis, frequency); duplicated because rotate-half pairs j with j + d/2.
        angles = pos[..., None] * inv_freq  # [..., N, 2, d/2]
        angles = torch.cat([angles, angles], dim=-1)  # [..., N, 2, d]
        self._angles = angles.flatten(-2)  # [..., N, D]: y angles then x angles
        self._cache: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}

    def cos_sin(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if dtype not in self._cache:
            a = self._angles.to(dtype)  # cast BEFORE cos/sin, as the reference does
            self._cache[dtype] = (a.cos(), a.sin())
        return self._cache[dtype]


def apply_rope_2d(t: torch.Tensor, angles: RotaryAngles) -> torch.Tensor:
    """Rotate q or k `[batch, heads, N, D]` by the 2-D angles of its N tokens (`[batch, N, D]`)."""
    cos, sin = angles.cos_sin(t.dtype)  # [batch, N, D] each
    cos, sin = cos[:, None], sin[:, None]  # [batch, 1, N, D]: shared by all heads
    ty, tx = t.chunk(2, dim=-1)  # [batch, heads, N, D/2] each: y half, x half
    rotated = torch.cat([_rotate_half(ty), _rotate_half(tx)], dim=-1)  # [batch, heads, N, D]
    return t * cos + rotated * sin
