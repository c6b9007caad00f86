"""Which frames and which audio samples a clip reads (issue 3's sampling rule), as pure functions."""

from __future__ import annotations

import re

import numpy as np

# EPIC-55 videos are named PXX_YY and their flow was computed at half the frame rate; the
# EPIC-100 extension videos are PXX_1YY with flow at every frame.
_EPIC55_ID = re.compile(r"^P\d+_\d{2}$")


def flow_stride(video_id: str) -> int:
    """2 for original EPIC-55 ids (PXX_YY), 1 for everything else (extension PXX_1YY, SSv2, ...)."""
    return 2 if _EPIC55_ID.match(video_id) else 1


def sample_frames(
    start_frame: int, stop_frame: int, frames: int, train: bool, rng: np.random.Generator | None = None
) -> np.ndarray:
    """T frame numbers spread over [start_frame, stop_frame] (inclusive) in T equal bins.

    Evaluation takes each bin's centre; training a uniformly random position inside each bin, so
    every frame of the segment can be seen while the clip still covers the whole action.
    """
    if stop_frame < start_frame:
        raise ValueError(f"stop_frame {stop_frame} < start_frame {start_frame}")
    n = stop_frame - start_frame + 1
    width = n / frames
    if train:
        rng = rng if rng is not None else np.random.default_rng()
        pos = (np.arange(frames) + rng.random(frames)) * width
    else:
        pos = (np.arange(frames) + 0.5) * width
    idx = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    return start_frame + idx


def clip_frames(start_frame: int, stop_frame: int, spec, train: bool,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """The T frame numbers a clip reads under `spec.sampling`: "segments" (`sample_frames`) or "dense"
    (T frames `spec.frame_stride` apart centred on the segment, clamped to it; in training the
    centre moves by up to half the slack on either side)."""
    if spec.sampling == "segments":
        return sample_frames(start_frame, stop_frame, spec.frames, train, rng)
    if spec.sampling != "dense":
        raise ValueError(f"unknown frame sampling {spec.sampling!r}; use segments or dense")
    span = (spec.frames - 1) * spec.frame_stride
    centre = (start_frame + stop_frame) / 2.0
    slack = max(0.0, (stop_frame - start_frame - span) / 2.0)
    if train and slack > 0:
        rng = rng if rng is not None else np.random.default_rng()
        centre += rng.uniform(-slack, slack)
    first = int(np.floor(centre - span / 2.0 + 0.5))
    return np.clip(first + np.arange(spec.frames) * spec.frame_stride, start_frame, stop_frame).astype(np.int64)


def flow_stacks(flow_frames: np.ndarray, stack: int, last: int) -> np.ndarray:
    """[T, stack] flow frame numbers: each sampled flow frame and the ones after it, up to `last`."""
    return np.minimum(np.asarray(flow_frames, dtype=np.int64)[:, None] + np.arange(stack), last)


def flow_frames_for(rgb_frames: np.ndarray, video_id: str) -> np.ndarray:
    """Flow frame numbers aligned to RGB frame numbers: (f - 1) // stride + 1."""
    stride = flow_stride(video_id)
    return (np.asarray(rgb_frames, dtype=np.int64) - 1) // stride + 1


def audio_window(start_frame: int, stop_frame: int, fps: float, sample_rate: int, samples: int) -> tuple[int, int]:
    """(first, last+1) sample indices of a `samples`-long window centred on the segment.

    Frame f (1-indexed) covers [(f-1)/fps, f/fps), so the segment spans
    [(start-1)/fps, stop/fps) and its centre is ((start-1) + stop) / (2 fps) seconds. The window may
    reach before 0 or past the recording's end; the reader pads only those parts with zeros.
    """
    centre = ((start_frame - 1) + stop_frame) / (2.0 * fps) * sample_rate
    first = int(np.floor(centre + 0.5)) - samples // 2
    return first, first + samples
