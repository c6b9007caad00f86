"""A small JPEG of the camera's newest frame for the live page, re-encoded at a low rate.

However many browsers poll it, the frame is encoded at most once per `min_interval_s`: on a Jetson the
CPU belongs to the sensors and the engine, not to a preview.
"""

from __future__ import annotations

import threading
from typing import Callable

import cv2
import numpy as np

from karmma_edge.edge_runtime.clock import Clock


def encode_thumbnail(rgb: np.ndarray, width: int = 160, quality: int = 80) -> bytes:
    """JPEG bytes of an RGB frame scaled to `width` px wide (aspect kept). Frames smaller than that
    (the model's input is often 32 to 224 px) are enlarged with nearest-neighbour so the page shows
    the pixels the model sees, not a blur."""
    h, w = rgb.shape[:2]
    height = max(1, round(h * width / w))
    interp = cv2.INTER_AREA if w > width else cv2.INTER_NEAREST
    bgr = cv2.cvtColor(cv2.resize(rgb, (width, height), interpolation=interp), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return buf.tobytes()


class Thumbnail:
    def __init__(self, frame: Callable[[], np.ndarray | None], clock: Clock, width: int = 160,
                 min_interval_s: float = 0.5):
        self._frame, self._clock = frame, clock
        self.width, self.min_interval_s = width, min_interval_s
        self._jpeg: bytes | None = None
        self._at = -float("inf")
        self._lock = threading.Lock()
        self.encodes = 0

    def jpeg(self) -> bytes | None:
        """The cached JPEG, refreshed from the newest frame when older than `min_interval_s`; None
        while there is no frame."""
        with self._lock:
            now = self._clock.now()
            if now - self._at >= self.min_interval_s:
                frame = self._frame()
                self._jpeg = None if frame is None else encode_thumbnail(frame, self.width)
                self._at = now
                self.encodes += 1
            return self._jpeg

    def clear(self) -> None:
        """Forget the cached image (privacy mute: no frame from before the mute may be served)."""
        with self._lock:
            self._jpeg, self._at = None, -float("inf")
