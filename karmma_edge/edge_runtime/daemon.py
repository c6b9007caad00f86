"""`karmma-edge serve`: sensors -> liveness -> profile -> engine -> predictions, with an HTTP API.

Everything that can be wrong with the user's input (config, file sources, bundle, engines, the
JSONL path, the HTTP address) is checked in the constructor, before any thread starts, so it fails
fast with exit 2. What the environment does later (a camera unplugged or down at start, a stream
that hangs, a full disk) never stops the daemon: a source that is down is a dead sensor, retried;
lines the JSONL file cannot take are counted.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import uuid
from pathlib import Path

import numpy as np

from karmma_edge.bundle import Bundle
from karmma_edge.edge_runtime.backends import Engine, create_engine
from karmma_edge.edge_runtime.clock import Clock
from karmma_edge.edge_runtime.config import ServeConfig
from karmma_edge.edge_runtime.events import EventHub, JsonLinesSink
from karmma_edge.edge_runtime.http_api import ApiServer
from karmma_edge.edge_runtime.inference import InferenceWorker
from karmma_edge.edge_runtime.liveness import LivenessMonitor
from karmma_edge.edge_runtime.rings import AudioRing, FrameRing
from karmma_edge.edge_runtime.selector import ProfileSelector
from karmma_edge.edge_runtime.sensors import (CameraSensor, FlowWorker, MicSensor, SensorThread, SourceTimeouts,
                                              WavFileSensor)
from karmma_edge.edge_runtime.sources import parse_source
from karmma_edge.edge_runtime.telemetry import RuntimeMetrics
from karmma_edge.edge_runtime.thumbnail import Thumbnail
from karmma_edge.edge_runtime.windows import PendingWindows, WindowAssembler, WindowScheduler
from karmma_edge.errors import ConfigError
from karmma_edge.inputs import FlowEncoding
from karmma_edge.profiles import MODALITIES

log = logging.getLogger(__name__)

MAX_CAMERA_FPS = 120     # sizes the frame rings: enough frames for one window at any real camera rate
SHUTDOWN_JOIN_S = 0.5    # per thread; all threads poll their stop event at least every 0.1 s


def open_engines(bundle: Bundle, cfg: ServeConfig) -> dict[str, Engine]:
    """Every profile's engine, activated and warmed up, so a switch costs no load and no first-call
    slowness."""
    if cfg.backend == "tensorrt":
        from karmma_edge.edge_runtime.backends.tensorrt import open_bundle_engines

        engines: dict[str, Engine] = dict(open_bundle_engines(bundle.root, cfg.precision, cfg.engine_cache,
                                                              cfg.dla_core))
    else:
        engines = {p: create_engine("onnxruntime", bundle.artifact(p, cfg.precision), threads=cfg.inference.threads,
                                  spin=False)
                   for p in bundle.profiles}
    for profile, engine in engines.items():
        engine.activate()
        feed = {t.name: np.zeros([1 if isinstance(d, str) else d for d in t.shape], t.dtype) for t in engine.inputs}
        for _ in range(cfg.inference.warmup_runs):
            engine.infer(feed)
        log.info("engine %s ready (%s, %s)", profile, cfg.backend, cfg.precision)
    return engines


class Daemon:
    def __init__(self, bundle_dir: Path, cfg: ServeConfig):
        self.cfg = cfg
        self.clock = Clock()
        self.started_at = self.clock.now()
        self.stop_event = threading.Event()
        self.metrics = RuntimeMetrics()
        self.failure: BaseException | None = None
        self.sse_keepalive_s = cfg.http.sse_keepalive_s
        self.run_id = uuid.uuid4().hex[:12]

        self.bundle = Bundle(bundle_dir)
        self.spec = self.bundle.manifest.spec
        self.sources = {"rgb": parse_source(cfg.sources.rgb, "rgb"), "audio": parse_source(cfg.sources.audio, "audio")}
        self.sources["flow"] = self.sources["rgb"]
        sensors = self._sensors()
        self.monitor = LivenessMonitor(sensors, cfg.liveness.thresholds())
        self._muted: set[str] = set()
        window_s = cfg.inference.window_s or self.spec.audio_seconds
        self.threads: list[threading.Thread] = []
        self._open_sensors(sensors, window_s)
        self._open_pipeline(window_s)
        try:
            self.server = ApiServer(cfg.http, self)
        except OSError as e:
            raise ConfigError(f"cannot listen on {cfg.http.host}:{cfg.http.port} ({e.strerror or e}); "
                              "choose another address with --http HOST:PORT") from None

    def _sensors(self) -> list[str]:
        """The sensors both the model takes and the sources give; refuses a daemon that would have none."""
        spec = self.spec
        has_camera = self.sources["rgb"].kind != "none" and ({"rgb", "flow"} & set(spec.modalities))
        has_mic = self.sources["audio"].kind != "none" and "audio" in spec.modalities
        if not has_camera and not has_mic:
            raise ConfigError(f"no usable source: this model takes {'+'.join(spec.modalities)}; give --rgb "
                              "and/or --audio (e.g. --rgb cam:0 --audio mic:default)")
        return (["rgb"] + (["flow"] if "flow" in spec.modalities else []) if has_camera else []) + \
               (["audio"] if has_mic else [])

    def _open_sensors(self, sensors: list[str], window_s: float) -> None:
        """Rings sized for the window, the camera (with its flow worker) and the microphone or WAV file."""
        cfg, spec = self.cfg, self.spec
        ring_frames = math.ceil(window_s * MAX_CAMERA_FPS) + 8
        self.frame_rings = {"rgb": FrameRing(ring_frames), "flow": FrameRing(ring_frames)}
        self.audio_ring = AudioRing(spec.audio_samples)
        self.camera: CameraSensor | None = None
        self.audio: SensorThread | None = None
        content = cfg.liveness.content()
        timeouts = SourceTimeouts(cfg.sources.retry_min_s, cfg.sources.retry_max_s, cfg.sources.open_timeout_s,
                                  cfg.sources.read_timeout_s, cfg.sources.probe_s)
        if "rgb" in sensors:
            flow = None
            if "flow" in sensors:
                encoding = self.bundle.manifest.flow_encoding
                if encoding is None:
                    encoding = FlowEncoding(cfg.flow.bound_px, spec.height, spec.width)
                    log.warning("the bundle does not say how its training flow was made (its data had no "
                                "KARMMA_flow.json): flow at the model's %dx%d with flow.bound_px %g, which "
                                "must be the data's", spec.width, spec.height, cfg.flow.bound_px)
                else:
                    log.info("flow as the training data's: DIS at %s rows, bound %g px", encoding.height,
                             encoding.bound_px)
                flow = FlowWorker(self.frame_rings["flow"], self.monitor, encoding, spec.height, spec.width,
                                  self.stop_event, on_skip=self.metrics.flow_skipped.inc)
            self.camera = CameraSensor(self.sources["rgb"], self.frame_rings["rgb"], self.monitor, self.clock,
                                       self.stop_event, spec.height, spec.width, content,
                                       realtime=cfg.sources.realtime, loop=cfg.sources.loop, flow=flow,
                                       timeouts=timeouts)
            self.threads += [self.camera] + ([flow] if flow else [])
        camera = self.camera
        self.thumbnail = Thumbnail(lambda: camera.latest_rgb if camera is not None else None, self.clock)
        if "audio" in sensors:
            src = self.sources["audio"]
            if src.kind == "file":
                self.audio = WavFileSensor(src, spec.sample_rate, self.audio_ring, self.monitor, self.clock,
                                           self.stop_event, content, realtime=cfg.sources.realtime,
                                           loop=cfg.sources.loop)
            else:
                self.audio = MicSensor(src, spec.sample_rate, self.audio_ring, self.monitor, self.clock,
                                       self.stop_event, content, timeouts,
                                       stall_s=max(2.0, 2 * cfg.liveness.stall_timeout_s))
            self.threads.append(self.audio)

    def _open_pipeline(self, window_s: float) -> None:
        """Engines, the profile selector, windows in and predictions out (SSE hub, JSON Lines sink)."""
        cfg = self.cfg
        self.engines = open_engines(self.bundle, cfg)
        self.selector = ProfileSelector(self.bundle.profiles, upgrade_hold_s=cfg.selector.upgrade_hold_s)
        self.pending = PendingWindows(cfg.inference.queue_size)
        self.hub = EventHub(on_drop=self.metrics.sse_dropped.inc)
        self.sink = JsonLinesSink(cfg.jsonl, on_lost=self.metrics.jsonl_lost.inc) if cfg.jsonl else None
        assembler = WindowAssembler(self.spec, window_s, self.frame_rings, self.audio_ring)
        self.scheduler = WindowScheduler(self.monitor, self.selector, assembler, self.pending, self.metrics,
                                         self.clock, cfg.inference.stride_s, self.stop_event)
        self.worker = InferenceWorker(self.engines, self.bundle.manifest.classes, self.pending, self.hub, self.sink,
                                      self.metrics, self.clock, cfg.inference.top_k, self.stop_event, self.run_id)
        # Window numbers go on from the JSONL file's last record: (run_id, seq) names a record, and
        # seq only grows within the file.
        self.seq_base = (self.sink.last_seq or 0) if self.sink is not None else 0
        self.scheduler.seq = self.seq_base
        self.threads += [self.scheduler, self.worker]

    @property
    def address(self) -> str:
        host, port = self.server.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # --- lifecycle --------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (exit status 0) or an internal failure (1)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        threading.excepthook = self._thread_failed
        for t in self.threads:
            t.start()
        self.server.start()
        print(f"karmma-edge serve: listening on {self.address}", flush=True)
        log.info("run %s; profiles %s; sensors %s", self.run_id, ", ".join(self.bundle.profiles),
                 ", ".join(self.monitor.sensors))
        while not self.stop_event.wait(0.5):
            pass
        self.shutdown()
        return 1 if self.failure is not None else 0

    def _thread_failed(self, args: threading.ExceptHookArgs) -> None:
        log.error("thread %s failed", args.thread.name if args.thread else "?",
                  exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        self.failure = args.exc_value
        self.stop_event.set()

    def shutdown(self) -> None:
        self.stop_event.set()
        self.hub.close()          # event streams end, so the server's graceful stop does not wait on them
        self.server.stop()
        self.pending.close()
        for t in self.threads:
            t.join(SHUTDOWN_JOIN_S)
        if self.sink is not None:
            self.sink.close()
        for engine in self.engines.values():
            engine.deactivate()

    # --- what the HTTP API asks for ---------------------------------------------------------------

    def health(self) -> dict:
        now = self.clock.now()
        verdicts, states = self.monitor.verdicts(now), self.monitor.states()
        live = self.monitor.live(now)
        sensors = {}
        for name in self.spec.modalities:
            src = self.sources[name]
            entry: dict = {"source": src.text if name != "flow" else f"derived from {src.text}"}
            if name in states:
                s, v = states[name], verdicts[name]
                entry.update(live=name in live, reason=v.reason, muted=s.muted,
                             last_data_age_s=None if s.last_beat is None else round(now - s.last_beat, 3),
                             ended_at=None if s.ended_at is None else round(self.clock.wall(s.ended_at), 4))
            else:
                entry.update(live=False, reason="no source", muted=False, last_data_age_s=None, ended_at=None)
            sensor = self.camera if name == "rgb" else self.audio if name == "audio" else None
            if sensor is not None:
                entry["error"] = getattr(sensor, "source_error", None)
            if name == "audio" and self.audio is not None:
                level = self.audio.level_dbfs
                entry["level_dbfs"] = None if level is None else round(level, 1)
            sensors[name] = entry
        last = self.worker.last_prediction
        return {
            "status": "ok" if self.selector.current else "idle",
            "live": [m for m in MODALITIES if m in live],
            "muted": sorted(self._muted),
            "active_profile": self.selector.current,
            "sensors": sensors,
            "profiles": self.bundle.profiles,
            "backend": self.cfg.backend, "precision": self.cfg.precision,
            "uptime_s": round(now - self.started_at, 3),
            "run_id": self.run_id,
            "windows": self.scheduler.seq - self.seq_base,
            "predictions": self.worker.predictions,
            "dropped_windows": self.scheduler.dropped,
            "last_prediction_seq": None if last is None else last.seq,
            "jsonl": None if self.sink is None else {"path": str(self.sink.path), "lost_lines": self.sink.lost,
                                                     "error": self.sink.error},
        }

    def metrics_text(self) -> bytes:
        return self.metrics.render()

    def set_sensor_enabled(self, name: str, enabled: bool) -> dict:
        if name not in self.monitor.sensors:
            raise KeyError(f"no sensor {name!r}; this daemon has: {', '.join(self.monitor.sensors)}")
        (self._muted.discard if enabled else self._muted.add)(name)
        now = self.clock.now()
        for sensor in self.monitor.sensors:
            # Flow is computed from the camera: muting the camera mutes flow too (privacy).
            muted = sensor in self._muted or (sensor == "flow" and "rgb" in self._muted)
            if muted != self.monitor.is_muted(sensor):
                self.monitor.set_muted(sensor, muted, now)
                if muted:   # drop what was captured: a muted sensor's data must not reach a window
                    (self.audio_ring if sensor == "audio" else self.frame_rings[sensor]).clear()
                    if sensor == "rgb" and self.camera is not None:   # nor the live page's thumbnail
                        self.camera.latest_rgb = None
                        self.thumbnail.clear()
        log.info("sensor %s %s via the API", name, "enabled" if enabled else "muted")
        return {"sensor": name, "enabled": enabled, "muted": sorted(self._muted)}

    def sse_clients_changed(self, delta: int) -> None:
        self.metrics.sse_clients.inc(delta)

    def thumbnail_jpeg(self) -> bytes:
        if self.camera is None:
            raise LookupError("this daemon has no camera")
        if self.monitor.is_muted("rgb"):
            raise LookupError("the camera is muted")
        jpeg = self.thumbnail.jpeg()
        if jpeg is None:
            raise LookupError("no camera frame yet")
        return jpeg
