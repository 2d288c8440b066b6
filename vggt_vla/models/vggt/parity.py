"""Check this port against a reference fixture folder.

    python -m vggt_vla.models.vggt.parity FIXTURE_DIR [--dtype float32|float64] [--atol X]

The folder holds `config.json` (`aggregator_kwargs` + `patch_embed_vit` dims), `weights.safetensors`
(keys prefixed `aggregator.`), `input.safetensors` (`images`), and `expected.safetensors` /
`expected_fp64.safetensors` (`layer_00`.., `patch_start_idx`). Prints the max abs diff per layer and
overall; exits 0 when every layer is within tolerance, 1 on a mismatch, 2 on an unusable folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .aggregator import AGGREGATOR_NORM_EPS, Aggregator
from .checkpoint import CheckpointError, load_aggregator_weights
from .vit import VIT_NORM_EPS

DEFAULT_ATOL = {"float32": 1e-4, "float64": 2e-6}
EXPECTED_FILE = {"float32": "expected.safetensors", "float64": "expected_fp64.safetensors"}

# ViT settings this port hard-codes (they are what the reference's `dinov2_*_reg` path uses).
_FIXED_VIT_SETTINGS = {
    "ffn_layer": "mlp",
    "qk_norm": False,
    "interpolate_antialias": True,
    "interpolate_offset": 0.0,
    "block_chunks": 0,
    "norm_eps": VIT_NORM_EPS,
}


def build_from_config(config: dict) -> Aggregator:
    """Aggregator described by a fixture `config.json` (random weights; load them separately)."""
    kwargs = dict(config["aggregator_kwargs"])
    vit = config.get("patch_embed_vit") or {}
    for key, want in _FIXED_VIT_SETTINGS.items():
        if key in vit and vit[key] != want:
            raise ValueError(f"patch_embed_vit.{key} = {vit[key]!r} is not supported (this port uses {want!r})")
    for key in ("img_size", "patch_size", "num_register_tokens"):
        if key in vit and vit[key] != kwargs.get(key, vit[key]):
            raise ValueError(f"patch_embed_vit.{key} = {vit[key]} differs from the aggregator's {kwargs.get(key)}; "
                             "the reference ViT always shares it")
    for key in ("aggregator_block_norm_eps", "qk_norm_eps"):
        if key in config and config[key] != AGGREGATOR_NORM_EPS:
            raise ValueError(f"{key} = {config[key]} is not supported (this port uses {AGGREGATOR_NORM_EPS})")
    if "conv" not in kwargs.get("patch_embed", "dinov2_vitl14_reg"):
        kwargs.update(
            vit_embed_dim=vit.get("embed_dim"),
            vit_depth=vit.get("depth"),
            vit_num_heads=vit.get("num_heads"),
            vit_mlp_ratio=vit.get("mlp_ratio"),
        )
    return Aggregator(**kwargs)


def compare(outputs: list[torch.Tensor], patch_start_idx: int, expected: dict[str, torch.Tensor]) -> list[tuple[str, float]]:
    """(name, max abs diff) per layer; inf for a missing layer or a shape mismatch."""
    layer_keys = sorted(k for k in expected if k.startswith("layer_"))
    rows = []
    if len(layer_keys) != len(outputs):
        rows.append((f"layer count ({len(outputs)} vs {len(layer_keys)} expected)", float("inf")))
    for key, out in zip(layer_keys, outputs):
        ref = expected[key]
        if ref.shape != out.shape:
            print(f"{key}: shape {tuple(out.shape)} vs expected {tuple(ref.shape)}")
            rows.append((key, float("inf")))
            continue
        rows.append((key, (out.double() - ref.double()).abs().max().item()))
    if "patch_start_idx" in expected and int(expected["patch_start_idx"].reshape(-1)[0]) != patch_start_idx:
        rows.append((f"patch_start_idx ({patch_start_idx} vs {int(expected['patch_start_idx'].reshape(-1)[0])})",
                     float("inf")))
    return rows


def run(fixture_dir: Path, dtype_name: str = "float32", atol: float | None = None) -> int:
    from safetensors.torch import load_file

    dtype = getattr(torch, dtype_name)
    atol = DEFAULT_ATOL[dtype_name] if atol is None else atol
    expected_path = fixture_dir / EXPECTED_FILE[dtype_name]
    needed = [fixture_dir / "config.json", fixture_dir / "weights.safetensors",
              fixture_dir / "input.safetensors", expected_path]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        print(f"fixture folder {fixture_dir} is missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        model = build_from_config(json.loads((fixture_dir / "config.json").read_text()))
        report = load_aggregator_weights(model, fixture_dir / "weights.safetensors")
    except (ValueError, KeyError, TypeError, CheckpointError) as exc:
        print(f"cannot build the aggregator for {fixture_dir}: {exc}", file=sys.stderr)
        return 2
    model = model.to(dtype).eval()
    images = load_file(str(fixture_dir / "input.safetensors"))["images"].to(dtype)  # [B, S, 3, H, W]
    with torch.no_grad():
        outputs, patch_start_idx = model(images)

    rows = compare(outputs, patch_start_idx, load_file(str(expected_path)))
    print(f"fixture {fixture_dir} | {dtype_name} vs {expected_path.name} | input {tuple(images.shape)} | "
          f"{report.num_loaded} tensors loaded")
    for name, diff in rows:
        print(f"  {name}: max abs diff {diff:.3e}")
    overall = max(d for _, d in rows)
    ok = overall <= atol
    print(f"overall max abs diff {overall:.3e} (tolerance {atol:.1e}): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixture_dir", type=Path)
    parser.add_argument("--dtype", choices=sorted(DEFAULT_ATOL), default="float32")
    parser.add_argument("--atol", type=float, default=None,
                        help="max abs diff allowed (default 1e-4 for float32, 2e-6 for float64)")
    args = parser.parse_args(argv)
    return run(args.fixture_dir, args.dtype, args.atol)


if __name__ == "__main__":
    sys.exit(main())
