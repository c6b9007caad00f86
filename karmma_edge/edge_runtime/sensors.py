"""Sensor threads: each reads one device or file and writes a timestamped ring; none ever waits on
inference. They report heartbeats and content problems to the liveness monitor.

While a sensor is muted it keeps reading (so a device's stream does not back up) but keeps nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import cv2
import numpy as np

from karmma_edge.data.audio import resample
from karmma_edge.data.flow import encode_flow, flow_engine
from karmma_edge.data.frames import resize
from karmma_edge.edge_runtime.clock import Clock
from karmma_edge.edge_runtime.content import ContentThresholds, audio_issue, audio_level_dbfs, frame_issue
from karmma_edge.edge_runtime.liveness import LivenessMonitor
from karmma_edge.edge_runtime.rings import AudioRing, FrameRing
from karmma_edge.edge_runtime.sources import SourceSpec
from karmma_edge.edge_runtime.wav import load_wav
from karmma_edge.errors import ConfigError, KarmmaError

log = logging.getLogger(__name__)

AUDIO_BLOCK_S = 0.02       # 20 ms blocks: fine-grained pacing, cheap content checks
FILE_FPS_FALLBACK = 30.0   # some containers report no frame rate


class SensorThread(threading.Thread):
    """A daemon thread with a stop event; `ended_at` is set when a file source runs out."""

    def __init__(self, name: str, monitor: LivenessMonitor, clock: Clock, stop: threading.Event):
        super().__init__(name=f"sensor-{name}", daemon=True)
        self.sensor = name
        self.monitor = monitor
        self.clock = clock
        self.stop_event = stop
        self.ended_at: float | None = None

    def _sleep_until(self, t: float) -> bool:
        """Wait until monotonic time t; False when asked to stop meanwhile."""
        delay = t - self.clock.now()
        return not self.stop_event.wait(delay) if delay > 0 else not self.stop_event.is_set()

    def _end(self) -> None:
        self.ended_at = self.clock.now()
        self.monitor.end(self.sensor, self.ended_at)
        log.info("%s source ended", self.sensor)


# --- camera and flow ------------------------------------------------------------------------------


def open_capture(spec: SourceSpec) -> cv2.VideoCapture:
    """An opened OpenCV capture that has delivered a frame, or a ConfigError naming the source."""
    if spec.kind == "file" and not Path(spec.target).is_file():
        raise ConfigError(f"camera source {spec.text!r}: {spec.target} does not exist")
    if spec.kind == "gst":
        if "GStreamer:                   YES" not in cv2.getBuildInformation():
            raise ConfigError(f"camera source {spec.text!r}: this OpenCV was built without GStreamer "
                              "(the pip wheels are; JetPack's system OpenCV has it)")
        cap = cv2.VideoCapture(spec.target, cv2.CAP_GSTREAMER)
    elif spec.kind == "cam":
        cap = cv2.VideoCapture(int(spec.target))
    else:
        cap = cv2.VideoCapture(spec.target)
    ok = cap.isOpened()
    if ok:
        ok, _ = cap.read()
    if not ok:
        cap.release()
        raise ConfigError(f"camera source {spec.text!r} cannot be opened or read by OpenCV; check the "
                          "path, device index, URL or pipeline (and permissions on /dev/video*)")
    if spec.kind == "file":
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    return cap


class FlowWorker(threading.Thread):
    """DIS optical flow between consecutive camera frames at the model's resolution, EPIC-encoded.

    Runs beside the camera so a slow flow never holds the camera up: frames it cannot keep up with
    are skipped (and counted), and the liveness monitor sees flow fall behind the camera.
    """

    def __init__(self, ring: FrameRing, monitor: LivenessMonitor, bound: float, height: int, width: int,
                 stop: threading.Event, on_skip=lambda: None):
        super().__init__(name="sensor-flow", daemon=True)
        self.ring, self.monitor, self.bound = ring, monitor, bound
        self.stop_event = stop
        self.on_skip = on_skip
        self._dis = flow_engine(height, width)
        self._inbox: queue.Queue[tuple[int, float, np.ndarray]] = queue.Queue(maxsize=4)

    def offer(self, index: int, t: float, gray: np.ndarray) -> None:
        while True:
            try:
                self._inbox.put_nowait((index, t, gray))
                return
            except queue.Full:
                try:
                    self._inbox.get_nowait()
                    self.on_skip()
                except queue.Empty:
                    pass

    def run(self) -> None:
        prev: tuple[int, np.ndarray] | None = None
        while not self.stop_event.is_set():
            try:
                index, t, gray = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if prev is not None and prev[0] == index - 1:   # flow only between neighbouring frames
                u, v = encode_flow(self._dis.calc(prev[1], gray, None), self.bound)
                if not self.monitor.is_muted("flow"):
                    self.ring.push(t, np.stack([u, v], axis=-1))
                    self.monitor.beat("flow", t)
            prev = (index, gray)


class CameraSensor(SensorThread):
    """Frames from OpenCV, converted to RGB and resized to the model's input like training frames."""

    def __init__(self, spec: SourceSpec, ring: FrameRing, monitor: LivenessMonitor, clock: Clock,
                 stop: threading.Event, height: int, width: int, content: ContentThresholds,
                 realtime: bool = True, loop: bool = False, flow: FlowWorker | None = None,
                 stall_timeout_s: float = 1.0):
        super().__init__("rgb", monitor, clock, stop)
        self.spec, self.ring, self.height, self.width = spec, ring, height, width
        self.content, self.realtime, self.loop, self.flow = content, realtime, loop, flow
        self.stall_timeout_s = stall_timeout_s
        self._cap = open_capture(spec)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else FILE_FPS_FALLBACK
        self.latest_rgb: np.ndarray | None = None   # newest model-sized frame (for a thumbnail)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._cap.release()

    def _run(self) -> None:
        paced = self.spec.is_file and self.realtime
        start, index, prev_gray = self.clock.now(), 0, None
        while not self.stop_event.is_set():
            if paced and not self._sleep_until(start + index / self.fps):
                return
            ok, bgr = self._cap.read()
            if not ok:
                if self.spec.is_file:
                    if not self.loop:
                        self._end()
                        return
                    self._cap.release()
                    self._cap = open_capture(self.spec)
                    start, index = self.clock.now(), 0
                    continue
                self._recover()
                continue
            t = self.clock.now()
            index += 1
            if self.monitor.is_muted("rgb"):
                prev_gray = None
                continue
            rgb = resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.height, self.width)
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            self.ring.push(t, rgb)
            self.latest_rgb = rgb
            self.monitor.beat("rgb", t, frame_issue(gray, prev_gray, self.content))
            prev_gray = gray
            if self.flow is not None:
                self.flow.offer(index, t, gray)

    def _recover(self) -> None:
        """A live camera stopped delivering: no heartbeats (the monitor sees a stall), then reopen."""
        log.warning("camera %s delivered no frame; reopening", self.spec.text)
        if self.stop_event.wait(self.stall_timeout_s):
            return
        self._cap.release()
        try:
            self._cap = open_capture(self.spec)
        except KarmmaError as e:
            log.warning("%s", e)


# --- audio ----------------------------------------------------------------------------------------


class _AudioSensor(SensorThread):
    def __init__(self, ring: AudioRing, monitor: LivenessMonitor, clock: Clock, stop: threading.Event,
                 content: ContentThresholds):
        super().__init__("audio", monitor, clock, stop)
        self.ring, self.content = ring, content
        self.level_dbfs: float | None = None      # of the newest block (a level meter reads it)

    def _deliver(self, t: float, block: np.ndarray) -> None:
        if self.monitor.is_muted("audio"):
            return
        self.level_dbfs = audio_level_dbfs(block)
        self.ring.push(t, block)
        self.monitor.beat("audio", t, audio_issue(block, self.content))


class WavFileSensor(_AudioSensor):
    """A WAV file played into the ring in 20 ms blocks, in real time unless asked otherwise."""

    def __init__(self, spec: SourceSpec, sample_rate: int, ring: AudioRing, monitor: LivenessMonitor,
                 clock: Clock, stop: threading.Event, content: ContentThresholds,
                 realtime: bool = True, loop: bool = False):
        super().__init__(ring, monitor, clock, stop, content)
        self.samples = load_wav(Path(spec.target), sample_rate)
        self.rate, self.realtime, self.loop = sample_rate, realtime, loop
        self.block = max(1, int(round(sample_rate * AUDIO_BLOCK_S)))

    def run(self) -> None:
        start, pos = self.clock.now(), 0
        while not self.stop_event.is_set():
            if pos >= self.samples.size:
                if not self.loop:
                    self._end()
                    return
                start, pos = self.clock.now(), 0
            block = self.samples[pos:pos + self.block]
            pos += block.size
            if self.realtime and not self._sleep_until(start + pos / self.rate):
                return
            self._deliver(self.clock.now(), block)


class MicSensor(_AudioSensor):
    """A microphone through sounddevice (the `audio` extra), opened at the model's rate when the
    device allows it, else at its own rate and resampled block by block."""

    def __init__(self, spec: SourceSpec, sample_rate: int, ring: AudioRing, monitor: LivenessMonitor,
                 clock: Clock, stop: threading.Event, content: ContentThresholds):
        super().__init__(ring, monitor, clock, stop, content)
        try:
            import sounddevice as sd
        except (ImportError, OSError) as e:
            raise ConfigError(f"audio source {spec.text!r} needs sounddevice and PortAudio ({e}): "
                              "`pip install 'karmma-edge[audio]'` and `sudo apt install libportaudio2`") from None
        device = None if spec.target in ("", "default") else spec.target
        self.rate = sample_rate
        try:
            try:
                sd.check_input_settings(device=device, channels=1, samplerate=sample_rate)
                device_rate = sample_rate
            except sd.PortAudioError:
                device_rate = int(sd.query_devices(device, "input")["default_samplerate"])
            self._stream = sd.InputStream(device=device, channels=1, samplerate=device_rate, dtype="float32",
                                          blocksize=int(device_rate * AUDIO_BLOCK_S), callback=self._callback)
        except (sd.PortAudioError, ValueError) as e:
            raise ConfigError(f"audio source {spec.text!r} cannot be opened: {e}; "
                              "`python -m sounddevice` lists the input devices") from None
        self.device_rate = device_rate

    def _callback(self, indata, frames, time_info, status) -> None:
        block = indata[:, 0].copy()
        if self.device_rate != self.rate:
            block = resample(block, int(round(block.size * self.rate / self.device_rate)))
        self._deliver(self.clock.now(), block)

    def run(self) -> None:
        with self._stream:
            self.stop_event.wait()
