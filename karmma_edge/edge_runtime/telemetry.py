"""The daemon's Prometheus metrics, on a private registry so tests and several daemons never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

SWITCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class RuntimeMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.windows = Counter("karmma_windows", "windows cut from the sensor rings", ["profile"], registry=r)
        self.dropped = Counter("karmma_dropped_windows", "pending windows dropped because inference fell behind",
                               registry=r)
        self.predictions = Counter("karmma_predictions", "predictions made", ["profile"], registry=r)
        self.idle_windows = Counter("karmma_idle_windows", "strides with no live sensor (nothing to run)",
                                    registry=r)
        self.switches = Counter("karmma_profile_switches", "active profile changes", ["from_profile", "to_profile"],
                                registry=r)
        self.switch_latency = Histogram(
            "karmma_profile_switch_latency_seconds",
            "time from a live-set change to the first prediction of the profile it selects",
            buckets=SWITCH_BUCKETS, registry=r)
        self.last_switch_latency = Gauge("karmma_last_profile_switch_latency_seconds",
                                         "the newest live-set-change-to-prediction time", registry=r)
        self.inference_latency = Histogram("karmma_inference_latency_seconds", "engine time per window",
                                           ["profile"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("karmma_pending_windows", "windows waiting for inference", registry=r)
        self.sensor_live = Gauge("karmma_sensor_live", "1 while the sensor is live", ["sensor"], registry=r)
        self.sensor_deaths = Counter("karmma_sensor_deaths", "live -> dead transitions", ["sensor", "reason"],
                                     registry=r)
        self.flow_skipped = Counter("karmma_flow_frames_skipped", "camera frames flow could not keep up with",
                                    registry=r)
        self.sse_clients = Gauge("karmma_sse_clients", "connected /v1/events clients", registry=r)
        self.sse_dropped = Counter("karmma_sse_events_dropped", "events a slow SSE client missed", registry=r)
        self.jsonl_lost = Counter("karmma_jsonl_lines_lost", "predictions the JSON Lines file could not take "
                                  "(disk full, read-only, gone)", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
