"""Timestamped ring buffers that sensor threads write and the window scheduler reads.

Writers never wait on readers: a write takes a short lock and overwrites the oldest entry.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque

import numpy as np


class FrameRing:
    """The last `capacity` frames (rgb or flow), each with the time it was captured."""

    def __init__(self, capacity: int):
        self._times: deque[float] = deque(maxlen=capacity)
        self._frames: deque[np.ndarray] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def push(self, t: float, frame: np.ndarray) -> None:
        with self._lock:
            self._times.append(t)
            self._frames.append(frame)

    def latest(self) -> tuple[float, np.ndarray] | None:
        with self._lock:
            return (self._times[-1], self._frames[-1]) if self._times else None

    def clear(self) -> None:
        with self._lock:
            self._times.clear()
            self._frames.clear()

    def sample(self, times: np.ndarray) -> np.ndarray | None:
        """For each time, the last frame captured at or before it (the oldest frame for earlier times),
        stacked into [len(times), ...]; None while the ring is empty."""
        with self._lock:
            if not self._times:
                return None
            stamps, frames = list(self._times), list(self._frames)
        picks = [max(bisect.bisect_right(stamps, float(t)) - 1, 0) for t in times]
        return np.stack([frames[i] for i in picks])


class AudioRing:
    """The last `capacity` mono samples and the capture time of the newest one."""

    def __init__(self, capacity: int):
        self._buf = np.zeros(capacity, np.float32)
        self._written = 0
        self._latest_t: float | None = None
        self._lock = threading.Lock()

    def push(self, t_last: float, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32)[-self._buf.size:]
        n, cap = block.size, self._buf.size
        with self._lock:
            start = self._written % cap
            first = min(n, cap - start)
            self._buf[start:start + first] = block[:first]
            self._buf[:n - first] = block[first:]
            self._written += n
            self._latest_t = t_last

    @property
    def latest_t(self) -> float | None:
        with self._lock:
            return self._latest_t

    def clear(self) -> None:
        with self._lock:
            self._written = 0
            self._latest_t = None

    def last(self, n: int) -> np.ndarray:
        """The newest n samples, oldest first; zeros before the first sample ever written."""
        cap = self._buf.size
        if n > cap:
            raise ValueError(f"AudioRing holds {cap} samples, {n} were asked for")
        out = np.zeros(n, np.float32)
        with self._lock:
            have = min(n, self._written)
            end = self._written % cap
            idx = (np.arange(end - have, end)) % cap
            out[n - have:] = self._buf[idx]
        return out
