"""Build a model for inspection and measure it: parameters, tokens, shapes, memory, latency.

Used by ``scripts/test_model.py``. Pretrained parts are loaded for real when they can be; when
they cannot (hub unreachable, nothing cached), ``build_for_inspection`` builds the same
architectures with random weights and says so in one WARNING line. Training code never calls
this: it builds ``VLAModel`` directly, which raises instead of falling back.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Optional

import torch

from vggt_vla.config import Config
from vggt_vla.models.pretrained import PretrainedUnavailable
from vggt_vla.models.vla_model import VLAModel

DUMMY_INSTRUCTIONS = [
    "pick up the black bowl between the plate and the ramekin and place it on the plate",
    "pick up the black bowl on the cookie box and place it on the plate",
]


def build_for_inspection(cfg: Config, random_weights: bool = False) -> tuple[VLAModel, bool]:
    """-> (model, used_random_weights). Falls back to random weights with one WARNING line.
    The model is built as training builds it: with its geometry teacher, if it has one."""
    teacher = cfg.model.geometry_alignment.enabled
    if random_weights:
        print("WARNING: --random-weights: pretrained parts are built from their known "
              "configurations with RANDOM weights; parameter counts are exact, outputs meaningless.")
        return VLAModel(cfg.model, random_weights=True, geometry_teacher=teacher), True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = VLAModel(cfg.model, geometry_teacher=teacher)
        except PretrainedUnavailable as err:
            first_line = str(err).splitlines()[0]
            print(f"WARNING: pretrained weights unavailable ({first_line}); building the same "
                  f"architectures with RANDOM weights from their known configurations — parameter "
                  f"counts are exact, outputs are meaningless.")
            return VLAModel(cfg.model, random_weights=True, geometry_teacher=teacher), True
    for w in caught:  # the build succeeded: pass on what it warned about (e.g. a fallback)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, False


def dummy_batch(cfg: Config, batch_size: int = 2, device="cpu", seed: int = 0,
                num_cameras: Optional[int] = None) -> dict:
    """A random batch in the project's batch format, shaped by the config (cameras: as many as
    data.camera_keys unless num_cameras is given)."""
    g = torch.Generator().manual_seed(seed)
    m = cfg.model
    V = num_cameras or len(cfg.data.camera_keys)
    size = m.vision.image_size
    T, A = m.action_head.chunk_size, m.action_head.action_dim
    batch = {
        "images": torch.rand(batch_size, V, 3, size, size, generator=g),
        "instruction": [DUMMY_INSTRUCTIONS[i % len(DUMMY_INSTRUCTIONS)] for i in range(batch_size)],
        "actions": torch.rand(batch_size, T, A, generator=g) * 2 - 1,
        "action_pad_mask": torch.zeros(batch_size, T, dtype=torch.bool),
    }
    if m.state_dim > 0:
        batch["state"] = torch.randn(batch_size, m.state_dim, generator=g)
        batch["goal_state"] = torch.randn(batch_size, m.state_dim, generator=g)  # model.goal_loss_weight
    if m.geometry_target.enabled:  # recorded geometry per patch (data/geometry.py)
        patches = (size // m.vision.patch_size) ** 2
        batch["geometry"] = torch.rand(batch_size, V, patches, 4, generator=g)
        batch["geometry_valid"] = torch.ones(batch_size, V, patches, dtype=torch.bool)
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def count(module: torch.nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def parameter_table(model: VLAModel) -> list[tuple[str, int, int]]:
    """(component, total, trainable) rows; encoders split into pretrained part and projection."""
    rows = []
    if model.vision is not None:  # vggt.fusion: inject builds none
        rows += [
            ("vision.backbone", *count(model.vision.backbone)),
            ("vision.proj+camera_embed", count(model.vision)[0] - count(model.vision.backbone)[0],
             count(model.vision)[1] - count(model.vision.backbone)[1]),
        ]
    rows += [
        ("language.model", *count(model.language.model)),
        ("language.proj", *count(model.language.proj)),
    ]
    if model.film is not None:
        rows.append(("film", *count(model.film)))
    if model.state_proj is not None:
        rows.append(("state_proj", *count(model.state_proj)))
    if model.keypoints is not None:
        rows.append(("keypoints", *count(model.keypoints)))
    rows += [
        ("token_type+action_queries", count(model.token_type)[0] + model.action_queries.numel(),
         count(model.token_type)[1] + model.action_queries.numel()),
    ]
    aggregator = getattr(model.backbone, "aggregator", None)
    if aggregator is not None:  # VGGT: the pretrained trunk and the adapter around it
        total, trainable = count(model.backbone)
        agg_total, agg_trainable = count(aggregator)
        rows += [("backbone.aggregator (VGGT)", agg_total, agg_trainable),
                 ("backbone.adapter", total - agg_total, trainable - agg_trainable)]
    else:
        rows.append(("backbone", *count(model.backbone)))
    rows.append(("head", *count(model.head)))
    if model.goal_head is not None:
        rows.append(("goal_head (train)", *count(model.goal_head)))
    if model.alignment is not None:
        rows.append(("alignment.projector (train)", *count(model.alignment.projector)))
    if model.geometry_head is not None:
        rows.append(("geometry_head (train)", *count(model.geometry_head)))
    teacher = (0, 0)  # training only: the policy is built without it
    if model.geometry_teacher is not None:
        teacher = count(model.geometry_teacher)
        rows.append(("alignment.teacher (VGGT, train)", *teacher))
    total = count(model)
    rows.append(("TOTAL", *total))
    if model.geometry_teacher is not None:
        rows.append(("TOTAL at inference (no teacher)", total[0] - teacher[0], total[1] - teacher[1]))
    return rows


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return kb / (2**20 if sys.platform == "darwin" else 2**10)


def count_flops(model: VLAModel, batch: dict) -> dict[str, float]:
    """FLOPs (multiply-add = 2) of one predict_action_chunk per sample, per top-level component.

    The language model's share is counted on a cold feature cache (its true cost per new
    instruction); with a warm cache a frozen language model costs nothing per step.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model.language.clear_cache()
    with FlopCounterMode(display=False) as counter:
        model.predict_action_chunk(batch)
    B = batch["images"].shape[0]
    per_module = counter.get_flop_counts()
    out = {"total": counter.get_total_flops() / B}
    # predict_action_chunk calls the components directly, so they are the counter's roots,
    # named by class.
    for name, child in model.named_children():
        out[name] = sum(per_module.get(type(child).__name__, {}).values()) / B
    if hasattr(model.backbone, "aggregator"):
        key = f"{type(model.backbone).__name__}.aggregator"
        out["backbone.aggregator (VGGT)"] = sum(per_module.get(key, {}).values()) / B
    if model.geometry_teacher is not None:  # not part of inference: counted on its own
        with FlopCounterMode(display=False) as counter:
            model.geometry_teacher(batch["images"])
        out["training only: geometry teacher"] = counter.get_total_flops() / B
    return out


def _median_ms(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


@dataclass
class Report:
    parameters: list
    tokens: dict
    shapes: dict
    latency_ms: dict
    peak_memory_mb: float
    language_model: str
    random_weights: bool
    flops: dict = field(default_factory=dict)


def measure(model: VLAModel, cfg: Config, batch_size: int = 2, repeats: int = 3,
            device="cpu", random_weights: bool = False) -> Report:
    """Run a training forward and predict_action_chunk on a dummy batch and measure them."""
    device = torch.device(device)
    model.to(device)
    batch = dummy_batch(cfg, batch_size, device)
    model.eval()
    with torch.no_grad():
        inputs = model.fusion_inputs(batch)
        cond = model.head_inputs(inputs)
        chunk = model.predict_action_chunk(batch)
        loss, _ = model(batch)
    h, w = inputs.grid or (0, 0)  # no vision encoder with vggt.fusion: inject
    V = inputs.num_cameras
    tokens = {
        "vision": h * w * V,
        "vision_per_camera": h * w,
        "cameras": V,
        "language (padded length in batch)": inputs.language.shape[1],
        "state": 0 if inputs.state is None else 1,
        "action_queries": inputs.queries.shape[1],
    }
    if cfg.model.backbone == "vggt":
        vggt = cfg.model.vggt
        per_frame = (vggt.image_size // 14) ** 2 + (1 if vggt.use_camera_tokens else 0)
        tokens["vggt frames (cameras)"] = V
        tokens["vggt patch tokens per frame"] = (vggt.image_size // 14) ** 2
        tokens["vggt tokens into late fusion"] = V * per_frame if vggt.fusion == "late" else 0
        if vggt.fusion == "cross_attention":
            tokens["vggt tokens read by cross-attention"] = V * per_frame
    tokens["total"] = (tokens["vision"] + tokens["language (padded length in batch)"]
                       + tokens["state"] + tokens["action_queries"] + tokens.get("vggt tokens into late fusion", 0))
    shapes = {
        "images": list(batch["images"].shape),
        "vision_tokens": list(inputs.vision.shape) if inputs.vision is not None else None,
        "language_tokens": list(inputs.language.shape),
        "head_inputs (query outputs + keypoint tokens)": list(cond.shape),
        "action_chunk": list(chunk.shape),
        "loss": list(loss.shape),
    }
    flops = count_flops(model, batch)
    model.train()
    latency = {"forward_loss (train mode, with grad)": _median_ms(lambda: model(batch), repeats, device)}
    model.eval()
    latency["predict_action_chunk"] = _median_ms(lambda: model.predict_action_chunk(batch), repeats, device)
    return Report(parameters=parameter_table(model), tokens=tokens, shapes=shapes, latency_ms=latency,
                  peak_memory_mb=peak_memory_mb(device), language_model=model.language.model_name,
                  random_weights=random_weights, flops=flops)


def format_report(report: Report, title: str) -> str:
    lines = [f"== {title} ==", f"language model: {report.language_model}"
             + ("  (RANDOM weights)" if report.random_weights else "")]
    lines.append(f"{'component':<28}{'total':>16}{'trainable':>16}")
    for name, total, trainable in report.parameters:
        lines.append(f"{name:<28}{total:>16,}{trainable:>16,}")
    lines.append("tokens per sample:")
    lines += [f"  {k:<36}{v:>8}" for k, v in report.tokens.items()]
    lines.append("shapes:")
    lines += [f"  {k:<36}{v}" for k, v in report.shapes.items()]
    lines.append("latency (median):")
    lines += [f"  {k:<36}{v:>10.1f} ms" for k, v in report.latency_ms.items()]
    lines.append("FLOPs per sample (predict_action_chunk, cold language cache):")
    lines += [f"  {k:<36}{v / 1e9:>10.2f} GFLOP" for k, v in report.flops.items()]
    lines.append(f"peak memory: {report.peak_memory_mb:,.0f} MB")
    return "\n".join(lines)
