"""Run logging: TensorBoard event files and a machine-readable metrics.jsonl with the same scalars,
plus an image panel of the input cameras with predicted vs target action traces."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from vggt_vla.checkpoint import atomic_write_text


class RunLogger:
    """Writes to <run_dir>/ (TensorBoard events) and <run_dir>/metrics.jsonl. Only rank 0 logs.

    resume_step: the step a resumed run continues from. Whatever was logged after it (by a run
    killed between two saves) is dropped from metrics.jsonl and purged from TensorBoard, so each
    step appears once."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, resume_step: Optional[int] = None):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            metrics = self.run_dir / "metrics.jsonl"
            if resume_step is not None and metrics.exists():
                _drop_rows_after(metrics, resume_step)
            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge)
            self.jsonl = open(metrics, "a")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.jsonl.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")
        self.jsonl.flush()

    def image(self, step: int, tag: str, image: np.ndarray) -> None:
        """image: uint8 [H, W, 3]."""
        if self.enabled:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        if self.enabled:
            self.writer.close()
            self.jsonl.close()


def _drop_rows_after(path: Path, step: int) -> None:
    """Keep the rows of a metrics.jsonl up to `step` (and drop a line torn by a kill)."""
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("step", 0) <= step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


TRACE_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def trace_plot(pred: np.ndarray, target: np.ndarray, width: int, row_h: int, labels=None):
    """Action traces over time, one row per dimension: solid line = prediction, dots = target.

    pred, target [N, A] -> PIL image [A * row_h, width]."""
    from PIL import Image, ImageDraw

    N, A = pred.shape
    plot = Image.new("RGB", (width, row_h * A), "white")
    draw = ImageDraw.Draw(plot)
    for a in range(A):
        top = a * row_h
        lo = float(min(pred[:, a].min(), target[:, a].min()))
        hi = float(max(pred[:, a].max(), target[:, a].max()))
        if hi - lo < 0.1:  # a (nearly) constant dimension: do not magnify noise
            lo, hi = (lo + hi) / 2 - 0.05, (lo + hi) / 2 + 0.05
        span = hi - lo

        def xy(t, v):
            return 8 + t * (width - 16) / max(1, N - 1), top + row_h - 4 - (v - lo) / span * (row_h - 8)

        color = TRACE_COLORS[a % len(TRACE_COLORS)]
        if N > 1:
            draw.line([xy(t, pred[t, a]) for t in range(N)], fill=color, width=2)
        for t in range(N):
            x, y = xy(t, target[t, a])
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], outline=color)
        label = labels[a] if labels else f"a{a}"
        draw.text((2, top), f"{label} [{lo:.2f}, {hi:.2f}]", fill=(0, 0, 0))
        draw.line([(0, top + row_h - 1), (width, top + row_h - 1)], fill=(220, 220, 220))
    return plot


def action_panel(images: np.ndarray, pred: np.ndarray, target: np.ndarray, size: int = 160) -> np.ndarray:
    """One sample's cameras next to its predicted and target action chunk.

    images [V, 3, H, W] float in [0, 1]; pred, target [T, A]. Returns uint8 [H, W, 3]."""
    from PIL import Image

    cams = [Image.fromarray((np.clip(im.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)).resize((size, size))
            for im in images]
    plot = trace_plot(pred, target, size * 2, max(24, size * 2 // max(1, pred.shape[1])))
    panel = Image.new("RGB", (size * len(cams) + plot.width, max(size, plot.height)), "white")
    for i, cam in enumerate(cams):
        panel.paste(cam, (i * size, 0))
    panel.paste(plot, (size * len(cams), 0))
    return np.asarray(panel)
