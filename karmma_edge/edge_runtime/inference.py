"""The inference thread: takes pending windows, runs the profile's engine, publishes predictions."""

from __future__ import annotations

import json
import logging
import threading

from karmma_edge.edge_runtime.backends.base import Engine
from karmma_edge.edge_runtime.clock import Clock
from karmma_edge.edge_runtime.events import EventHub, JsonLinesSink
from karmma_edge.edge_runtime.predictions import Prediction, head_predictions
from karmma_edge.edge_runtime.telemetry import RuntimeMetrics
from karmma_edge.edge_runtime.windows import PendingWindows, Window
from karmma_edge.profiles import MODALITIES

log = logging.getLogger(__name__)


class InferenceWorker(threading.Thread):
    def __init__(self, engines: dict[str, Engine], classes: dict[str, list[str]], pending: PendingWindows,
                 hub: EventHub, sink: JsonLinesSink | None, metrics: RuntimeMetrics, clock: Clock,
                 top_k: int, stop: threading.Event, run_id: str = ""):
        super().__init__(name="inference", daemon=True)
        self.run_id = run_id    # every record names the daemon run it came from
        self.engines, self.classes, self.pending = engines, classes, pending
        self.hub, self.sink, self.metrics, self.clock = hub, sink, metrics, clock
        self.k, self.stop_event = top_k, stop
        self.last_profile: str | None = None
        self.last_prediction: Prediction | None = None
        self.predictions = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            window = self.pending.get(timeout=0.1)
            if window is not None:
                self.metrics.queue_depth.set(len(self.pending))
                self.handle(window)

    def handle(self, window: Window) -> Prediction:
        engine = self.engines[window.profile]
        out = engine.infer(window.feed)
        done = self.clock.now()
        if window.profile != self.last_profile:
            # The first prediction of a newly selected profile: how long since the sensors changed.
            latency = done - window.live_changed_at
            if self.last_profile is not None:
                self.metrics.switch_latency.observe(latency)
                self.metrics.last_switch_latency.set(latency)
            self.last_profile = window.profile
        prediction = self._prediction(window, out, done, engine.last_latency_s or 0.0)
        self.metrics.predictions.labels(window.profile).inc()
        self.metrics.inference_latency.labels(window.profile).observe(engine.last_latency_s or 0.0)
        record = {"run_id": self.run_id, **prediction.to_dict()}
        self.hub.publish((prediction.seq, json.dumps(record, separators=(",", ":"))))
        if self.sink is not None:
            self.sink.write(record)
        self.last_prediction = prediction
        self.predictions += 1
        return prediction

    def _prediction(self, window: Window, out: dict, done: float, latency_s: float) -> Prediction:
        verb, noun, action = head_predictions(out, self.classes, self.k)
        return Prediction(
            seq=window.seq, window_end=round(self.clock.wall(window.t_end), 4),
            emitted_at=round(self.clock.wall(done), 4), profile=window.profile,
            live=[m for m in MODALITIES if m in window.live],
            latency_ms=round(latency_s * 1e3, 3),
            verb=verb, noun=noun, action=action)
