"""Writing MP4 files, one place: the LeRobot writer's video features and closed-loop episode videos.

    with Mp4Writer(path, fps=10, width=128, height=128, codec="libsvtav1", gop=2) as mp4:
        mp4.add(frames)                       # uint8 [N, H, W, 3], as many calls as needed
    write_video(path, frames, fps=20)         # a whole clip at once: H.264 (MPEG-4 without libx264)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


class Mp4Writer:
    """One MP4 being written frame by frame; the LeRobot v3.0 writer keeps it open across episodes
    (timestamps keep counting). Counts the frames and the encoded bytes (the writer rolls files
    over by size). width and height must be even (yuv420p)."""

    def __init__(self, path: Path, *, fps: int, width: int, height: int, codec: str,
                 gop: Optional[int] = None, options: Optional[dict[str, str]] = None):
        import av

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fps = fps
        self.container = av.open(str(path), "w")
        try:
            self.stream = self.container.add_stream(codec, rate=fps, options=options or {})
        except Exception:  # an encoder this PyAV build lacks: leave no empty file behind
            self.container.close()
            path.unlink(missing_ok=True)
            raise
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        if gop is not None:
            self.stream.gop_size = gop
        self.frames = 0
        self.bytes = 0

    def add(self, frames: Sequence[np.ndarray]) -> None:
        import av

        for img in frames:  # img: [H, W, 3] uint8
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = self.frames
            frame.time_base = Fraction(1, self.fps)
            self._mux(self.stream.encode(frame))
            self.frames += 1

    def _mux(self, packets) -> None:
        for packet in packets:
            self.bytes += packet.size
            self.container.mux(packet)

    def close(self) -> None:
        self._mux(self.stream.encode())  # flush the encoder's look-ahead
        self.container.close()

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: Path, frames: Sequence[np.ndarray], fps: int = 20) -> None:
    """RGB frames (uint8 [H, W, 3]) as an H.264 MP4, or MPEG-4 with a PyAV build without libx264.
    Odd sizes are padded by one black row / column (yuv420p needs even ones)."""
    h, w = frames[0].shape[:2]
    padded = [np.pad(img, ((0, h % 2), (0, w % 2), (0, 0))) for img in frames]  # [H', W', 3]
    try:
        mp4 = Mp4Writer(path, fps=fps, width=w + w % 2, height=h + h % 2, codec="libx264")
    except Exception:  # a PyAV build without libx264
        mp4 = Mp4Writer(path, fps=fps, width=w + w % 2, height=h + h % 2, codec="mpeg4")
    with mp4:
        mp4.add(padded)
