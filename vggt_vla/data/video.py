"""Decode single video frames by timestamp with PyAV, seeking instead of decoding whole files.

    reader = VideoFrameReader(tolerance_s=1e-4)
    rgb = reader.frame("videos/observation.images.image/chunk-000/file-000.mp4", 16.7)  # [H, W, 3] uint8

Any codec FFmpeg decodes works (AV1 through libdav1d, H.264, HEVC, ...). For each request the
reader seeks to the keyframe at or before the time and decodes forward to the frame, so a sample
costs a seek plus at most one GOP of decoding (lerobot writes GOP 2). Requests that move forward
by a few frames in the same file continue decoding without a seek. Open files are kept per
process (DataLoader workers each get their own after fork) in an LRU of `max_open` files: v3.0
needs one per camera; v2.1 has one per episode and camera, and reopening costs ~0.3 ms.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import numpy as np

from .meta import DatasetError

# Decode this many frames forward rather than seek; a seek + keyframe decode costs about as much.
_FORWARD_FRAMES = 4
_FORKED_LEFTOVERS: list = []
_RETRY_BACK_S = 5.0


def _import_av():
    try:
        import av
    except ImportError as err:  # av is only needed for video datasets
        raise ImportError("reading dtype 'video' features needs PyAV: pip install av") from err
    return av


class _OpenVideo:
    def __init__(self, path: Path):
        av = _import_av()
        try:
            self.container = av.open(str(path))
        except Exception as err:  # FileNotFoundError, av.error.InvalidDataError, ...
            raise DatasetError(f"cannot open video {path}: {type(err).__name__}: {err}") from err
        if not self.container.streams.video:
            raise DatasetError(f"video file {path} has no video stream")
        self.stream = self.container.streams.video[0]
        # One decode thread: DataLoader workers already use the cores, and frames are small.
        self.stream.thread_type = "SLICE"
        self.stream.codec_context.thread_count = 1
        self.time_base = float(self.stream.time_base)
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.frame_pts = (1.0 / float(rate)) / self.time_base if rate else None  # pts per frame
        self.frames = None  # decode iterator, positioned after `last_pts`
        self.last_pts: Optional[int] = None
        self.last_rgb: Optional[np.ndarray] = None

    def seek(self, pts: int) -> None:
        self.container.seek(max(int(pts), 0), stream=self.stream, backward=True, any_frame=False)
        self.frames = self.container.decode(self.stream)
        self.last_pts, self.last_rgb = None, None

    def close(self) -> None:
        self.container.close()


class VideoFrameReader:
    """Frames at given timestamps, within `tolerance_s` (lerobot's default is 1e-4 s)."""

    def __init__(self, tolerance_s: float = 1e-4, max_open: int = 32):
        self.tolerance_s = tolerance_s
        self.max_open = max_open
        self._open: OrderedDict[Path, _OpenVideo] = OrderedDict()
        self._pid = os.getpid()

    def frame(self, path: Path, timestamp: float) -> np.ndarray:
        """The RGB frame [H, W, 3] uint8 of `path` at `timestamp` seconds."""
        video = self._get(Path(path))
        try:
            return self._decode_at(video, path, timestamp)
        except DatasetError:
            raise
        except Exception as err:  # a corrupt packet mid-file: name the file and time
            self._drop(Path(path))
            raise DatasetError(f"cannot decode {path} at t={timestamp:.4f}s: {type(err).__name__}: {err}") from err

    def __getstate__(self):  # spawn-started workers get a reader with nothing open
        return {"tolerance_s": self.tolerance_s, "max_open": self.max_open}

    def __setstate__(self, state):
        self.__init__(**state)

    def close(self) -> None:
        for video in self._open.values():
            video.close()
        self._open.clear()

    def _get(self, path: Path) -> _OpenVideo:
        if os.getpid() != self._pid:
            # Forked into a worker: the parent's decoders are not ours. They must not be freed
            # here either (freeing waits on decoder threads that fork did not copy, and hangs),
            # so they are parked for the life of the process.
            _FORKED_LEFTOVERS.append(self._open)
            self._open = OrderedDict()
            self._pid = os.getpid()
        video = self._open.get(path)
        if video is None:
            video = _OpenVideo(path)
            self._open[path] = video
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)[1].close()
        self._open.move_to_end(path)
        return video

    def _drop(self, path: Path) -> None:
        video = self._open.pop(path, None)
        if video is not None:
            video.close()

    def _decode_at(self, video: _OpenVideo, path, timestamp: float) -> np.ndarray:
        target = timestamp / video.time_base  # in stream pts units (float)
        tol = self.tolerance_s / video.time_base
        if video.last_pts is not None and abs(video.last_pts - target) <= tol:
            return video.last_rgb  # the same frame again (e.g. two samples of one step)
        near_ahead = (video.last_pts is not None and video.frame_pts is not None
                      and video.last_pts < target <= video.last_pts + _FORWARD_FRAMES * video.frame_pts)
        if not near_ahead:
            video.seek(round(target))
        for attempt in range(2):
            seen_first: Optional[float] = None
            for frame in video.frames:
                if frame.pts is None:
                    continue
                if seen_first is None:
                    seen_first = frame.pts
                if frame.pts >= target - tol:
                    if frame.pts - target > tol:
                        break  # overshot: the seek landed after the frame, or it does not exist
                    rgb = frame.to_ndarray(format="rgb24")  # [H, W, 3] uint8
                    rgb.flags.writeable = False  # cached for repeated requests: keep it intact
                    video.last_pts, video.last_rgb = frame.pts, rgb
                    return rgb
                video.last_pts, video.last_rgb = None, None
            else:
                break  # end of file
            if attempt == 0 and seen_first is not None and seen_first > target - tol:
                # Landed after the frame (a forward step past a gap, or a file whose index seeks
                # late): retry once from a point well before it.
                video.seek(round(target - _RETRY_BACK_S / video.time_base))
                continue
            break
        video.frames, video.last_pts = None, None
        raise DatasetError(
            f"{path}: no frame within {self.tolerance_s}s of t={timestamp:.4f}s (the file may be "
            f"shorter than the episode metadata says, or its timestamps differ)")
