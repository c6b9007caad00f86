"""Sliding windows: every stride, the live set picks a profile and that profile's inputs are cut
from the sensor rings into a bounded queue of pending windows (oldest dropped when full)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from karmma_edge.edge_runtime.clock import Clock
from karmma_edge.edge_runtime.liveness import LivenessMonitor
from karmma_edge.edge_runtime.rings import AudioRing, FrameRing
from karmma_edge.edge_runtime.selector import ProfileSelector
from karmma_edge.edge_runtime.telemetry import RuntimeMetrics
from karmma_edge.inputs import InputSpec
from karmma_edge.profiles import parse_profile

log = logging.getLogger(__name__)


@dataclass
class Window:
    seq: int
    t_end: float                  # monotonic time of the window's end
    profile: str
    live: frozenset[str]
    live_changed_at: float        # monotonic time the live set last changed (switch latency)
    feed: dict[str, np.ndarray]   # engine inputs with the batch axis


class WindowAssembler:
    """T frames at the centres of T equal bins over the last `window_s` seconds (the rule training
    used over a segment), and the last `audio_samples` samples."""

    def __init__(self, spec: InputSpec, window_s: float, frames: dict[str, FrameRing], audio: AudioRing):
        self.spec, self.window_s, self.frames, self.audio = spec, window_s, frames, audio
        self._offsets = (np.arange(spec.frames) + 0.5) * (window_s / spec.frames) - window_s

    def cut(self, profile: str, t_end: float) -> dict[str, np.ndarray]:
        feed = {}
        for m in parse_profile(profile):
            if m == "audio":
                feed[m] = self.audio.last(self.spec.audio_samples)[None]
            else:
                stack = self.frames[m].sample(t_end + self._offsets)
                if stack is None:  # live implies a frame arrived; guard a ring cleared by a mute race
                    stack = np.full(self.spec.input_shape(m), 128 if m == "flow" else 0, np.uint8)
                feed[m] = stack[None]
        return feed


class PendingWindows:
    """Bounded FIFO between the scheduler and inference; `put` drops the oldest when full."""

    def __init__(self, capacity: int):
        self._items: deque[Window] = deque()
        self.capacity = capacity
        self._cond = threading.Condition()
        self._closed = False

    def put(self, window: Window) -> Window | None:
        """Queue `window`; returns the window dropped to make room, if any."""
        with self._cond:
            dropped = self._items.popleft() if len(self._items) >= self.capacity else None
            self._items.append(window)
            self._cond.notify()
            return dropped

    def get(self, timeout: float) -> Window | None:
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class WindowScheduler(threading.Thread):
    def __init__(self, monitor: LivenessMonitor, selector: ProfileSelector, assembler: WindowAssembler,
                 pending: PendingWindows, metrics: RuntimeMetrics, clock: Clock, stride_s: float,
                 stop: threading.Event):
        super().__init__(name="window-scheduler", daemon=True)
        self.monitor, self.selector, self.assembler = monitor, selector, assembler
        self.pending, self.metrics, self.clock = pending, metrics, clock
        self.stride_s, self.stop_event = stride_s, stop
        self.seq = 0
        self.dropped = 0
        self.live: frozenset[str] = frozenset()
        self.live_changed_at = clock.now()

    def run(self) -> None:
        next_tick = self.clock.now() + self.stride_s
        while not self.stop_event.wait(max(0.0, next_tick - self.clock.now())):
            self.tick(next_tick)
            next_tick += self.stride_s
            if next_tick < self.clock.now():   # the machine stalled: skip ticks rather than burst
                next_tick = self.clock.now() + self.stride_s

    def tick(self, now: float) -> None:
        live = self.monitor.live(now)
        for name in self.monitor.sensors:
            self.metrics.sensor_live.labels(name).set(1 if name in live else 0)
        if live != self.live:
            verdicts = self.monitor.verdicts(now)
            for name in self.live - live:
                self.metrics.sensor_deaths.labels(name, verdicts[name].reason).inc()
            log.info("live sensors: %s -> %s", "+".join(sorted(self.live)) or "none", "+".join(sorted(live)) or "none")
            self.live, self.live_changed_at = live, now
        before = self.selector.current
        profile = self.selector.update(live, now)
        if profile != before:
            log.info("profile switch: %s -> %s", before or "none", profile or "none")
            self.metrics.switches.labels(before or "none", profile or "none").inc()
        if profile is None:
            self.metrics.idle_windows.inc()
            return
        self.seq += 1
        window = Window(self.seq, now, profile, live, self.live_changed_at, self.assembler.cut(profile, now))
        self.metrics.windows.labels(profile).inc()
        if self.pending.put(window) is not None:
            self.dropped += 1
            self.metrics.dropped.inc()
        self.metrics.queue_depth.set(len(self.pending))
