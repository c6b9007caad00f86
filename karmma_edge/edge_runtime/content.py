"""Bad-content checks on what a sensor delivers: black or frozen frames, silence, clipping.

Each check looks at one frame or one audio block and names the problem (or None); how long a problem
must last before the sensor counts as dead is the liveness monitor's business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ContentThresholds:
    black_level: float = 10.0        # mean grey level (0..255) below which a frame is black
    frozen_max_diff: float = 0.1     # mean |difference| to the previous frame (grey levels) = frozen
    silence_dbfs: float = -60.0      # block RMS below this (dB full scale) is silence
    clip_level: float = 0.999        # |sample| at or above this is clipped
    clip_fraction: float = 0.01      # a block with more clipped samples than this is clipping


def frame_issue(gray: np.ndarray, previous: np.ndarray | None, th: ContentThresholds) -> str | None:
    """`gray` is the frame in grey levels at the model's resolution (cheap to compare)."""
    if float(gray.mean()) < th.black_level:
        return "black"
    if previous is not None and float(np.abs(gray.astype(np.int16) - previous).mean()) <= th.frozen_max_diff:
        return "frozen"
    return None


def audio_level_dbfs(block: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64)))) if block.size else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


def audio_issue(block: np.ndarray, th: ContentThresholds) -> str | None:
    if block.size == 0:
        return None
    if float(np.mean(np.abs(block) >= th.clip_level)) > th.clip_fraction:
        return "clipping"
    if audio_level_dbfs(block) < th.silence_dbfs:
        return "silence"
    return None
