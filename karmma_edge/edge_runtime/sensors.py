"""Sensor threads: each reads one device or file and writes a timestamped ring; none ever waits on
inference. They report heartbeats and content problems to the liveness monitor.

While a sensor is muted it keeps reading (so a device's stream does not back up) but keeps nothing.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from karmma_edge.data.audio import resample
from karmma_edge.data.flow import encode_flow, flow_engine, scene_flow
from karmma_edge.data.frames import resize
from karmma_edge.edge_runtime.clock import Clock
from karmma_edge.edge_runtime.content import ContentThresholds, audio_issue, audio_level_dbfs, frame_issue
from karmma_edge.edge_runtime.liveness import LivenessMonitor
from karmma_edge.edge_runtime.rings import AudioRing, FrameRing
from karmma_edge.edge_runtime.sources import SourceSpec, check_regular_file
from karmma_edge.edge_runtime.wav import load_wav
from karmma_edge.errors import ConfigError, KarmmaError
from karmma_edge.inputs import FlowEncoding

log = logging.getLogger(__name__)

AUDIO_BLOCK_S = 0.02       # 20 ms blocks: fine-grained pacing, cheap content checks
LOG_EVERY_S = 60.0         # a source that stays down is logged at most this often
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


# --- reopening live sources -----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceTimeouts:
    retry_min_s: float = 0.25     # first wait after a failed open
    retry_max_s: float = 1.0      # the wait doubles up to this
    open_timeout_s: float = 5.0   # network streams: opening
    read_timeout_s: float = 3.0   # network streams: one frame
    probe_s: float = 0.5          # network streams: how much of the stream FFmpeg reads to learn its format


def limit_stream_probe(probe_s: float) -> None:
    """FFmpeg reads 5 s of a stream to learn its format before the first frame (about 1.5 s for a
    15 fps MJPEG stream here): time a returning camera spends dead. OpenCV takes FFmpeg options only
    from the environment, for the whole process, so this sets them unless the user already has; call
    it before the sensor threads start (setenv is not thread-safe)."""
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", f"analyzeduration;{int(probe_s * 1e6)}")


class Retry:
    """Waits between attempts to (re)open a source, doubling from `retry_min_s` to `retry_max_s`, and
    its log: the first failure at once, then one line per LOG_EVERY_S however often it is retried."""

    def __init__(self, what: str, timeouts: SourceTimeouts):
        self.what, self.timeouts = what, timeouts
        self.failures = 0
        self.error: str | None = None       # why the newest attempt failed, while it is down
        self._wait = timeouts.retry_min_s
        self._logged = -float("inf")

    def failed(self, error: str) -> float:
        """Record a failed attempt; the seconds to wait before the next."""
        self.failures += 1
        self.error = error
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_S:
            self._logged = now
            log.warning("%s is down (%s); retrying every %.1f s at most, %d attempts so far", self.what, error,
                        self.timeouts.retry_max_s, self.failures)
        wait, self._wait = self._wait, min(self._wait * 2, self.timeouts.retry_max_s)
        return wait

    def succeeded(self) -> None:
        if self.failures:
            log.warning("%s is back after %d failed attempts", self.what, self.failures)
        self.failures, self.error, self._wait = 0, None, self.timeouts.retry_min_s
        self._logged = -float("inf")


# --- camera and flow ------------------------------------------------------------------------------


def require_gstreamer(spec: SourceSpec) -> None:
    if "GStreamer:                   YES" not in cv2.getBuildInformation():
        raise ConfigError(f"camera source {spec.text!r}: this OpenCV was built without GStreamer "
                          "(the pip wheels are; JetPack's system OpenCV has it)")


def open_capture(spec: SourceSpec, timeouts: SourceTimeouts = SourceTimeouts()) -> cv2.VideoCapture:
    """An opened OpenCV capture that has delivered a frame, or a ConfigError naming the source."""
    if spec.kind == "file":
        check_regular_file(Path(spec.target), f"camera source {spec.text!r}")
    if spec.kind == "gst":
        require_gstreamer(spec)
        cap = cv2.VideoCapture(spec.target, cv2.CAP_GSTREAMER)
    elif spec.kind == "cam":
        cap = cv2.VideoCapture(int(spec.target))
    elif spec.kind == "rtsp":
        # Bounded waits: without them FFmpeg waits about 30 s for a host that never answers.
        cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeouts.open_timeout_s * 1000),
                                cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(timeouts.read_timeout_s * 1000)])
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
    """DIS optical flow between consecutive camera frames, made as the training data's was.

    `encoding` says how: the camera's frames come resized to its frame size (`gray`), the flow
    is EPIC-encoded with its bound and then resized to the model's size, as the dataset readers
    resize the flow frames. Flow computed at the model's size instead moves fewer pixels (half, on
    the synthetic data's 96 px frames and a 48 px model) than the flow the model was trained on.

    Runs beside the camera so a slow flow never holds the camera up: frames it cannot keep up with
    are skipped (and counted), and the liveness monitor sees flow fall behind the camera.
    """

    def __init__(self, ring: FrameRing, monitor: LivenessMonitor, encoding: FlowEncoding, height: int, width: int,
                 stop: threading.Event, on_skip=lambda: None):
        super().__init__(name="sensor-flow", daemon=True)
        self.ring, self.monitor, self.encoding = ring, monitor, encoding
        self.height, self.width = height, width
        self.stop_event = stop
        self.on_skip = on_skip
        self._dis: cv2.DISOpticalFlow | None = None     # made for the first frame's size
        self._inbox: queue.Queue[tuple[int, float, np.ndarray]] = queue.Queue(maxsize=4)

    def gray(self, bgr: np.ndarray) -> np.ndarray:
        """A camera frame (BGR, any size) -> the gray frame at the encoding's size that `offer` takes."""
        return cv2.cvtColor(resize(bgr, *self.encoding.frame_size(*bgr.shape[:2])), cv2.COLOR_BGR2GRAY)

    def flow(self, prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """Two frames from `gray` -> the model's flow input for the pair, uint8 [H,W,2]."""
        if self._dis is None:
            self._dis = flow_engine(*cur.shape[:2])
        u, v = encode_flow(scene_flow(self._dis, prev, cur), self.encoding.bound_px)
        return np.stack([resize(u, self.height, self.width), resize(v, self.height, self.width)], axis=-1)

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
                uv = self.flow(prev[1], gray)
                if not self.monitor.is_muted("flow"):
                    self.ring.push(t, uv)
                    self.monitor.beat("flow", t)
            prev = (index, gray)


class CameraSensor(SensorThread):
    """Frames from OpenCV, converted to RGB and resized to the model's input like training frames.

    A file source is opened here, so a wrong path is an error at start. A live source (camera,
    RTSP, pipeline) is opened by the thread, and reopened whenever it stops delivering, with
    `Retry`'s waits: down at start or later, it is a dead sensor until it is back.
    """

    def __init__(self, spec: SourceSpec, ring: FrameRing, monitor: LivenessMonitor, clock: Clock,
                 stop: threading.Event, height: int, width: int, content: ContentThresholds,
                 realtime: bool = True, loop: bool = False, flow: FlowWorker | None = None,
                 timeouts: SourceTimeouts = SourceTimeouts()):
        super().__init__("rgb", monitor, clock, stop)
        self.spec, self.ring, self.height, self.width = spec, ring, height, width
        self.content, self.realtime, self.loop, self.flow = content, realtime, loop, flow
        self.timeouts = timeouts
        self.retry = Retry(f"camera {spec.text}", timeouts)
        self.fps = FILE_FPS_FALLBACK
        self._cap: cv2.VideoCapture | None = None
        if spec.kind == "rtsp":
            limit_stream_probe(timeouts.probe_s)
        if spec.kind == "gst":   # no retry can fix this OpenCV: an error at start
            require_gstreamer(spec)
        if spec.is_file:
            self._set_capture(open_capture(spec, timeouts))
        self.latest_rgb: np.ndarray | None = None   # newest model-sized frame (for a thumbnail)

    @property
    def source_error(self) -> str | None:
        return self.retry.error

    def _set_capture(self, cap: cv2.VideoCapture) -> None:
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else FILE_FPS_FALLBACK

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._release()

    def _open(self) -> bool:
        """Open the source, retrying until it opens (True) or the daemon stops (False)."""
        while not self.stop_event.is_set():
            try:
                self._set_capture(open_capture(self.spec, self.timeouts))
            except KarmmaError as e:
                if self.stop_event.wait(self.retry.failed(str(e))):
                    return False
                continue
            self.retry.succeeded()
            return True
        return False

    def _run(self) -> None:
        paced = self.spec.is_file and self.realtime
        start, index, prev_gray = self.clock.now(), 0, None
        while not self.stop_event.is_set():
            if self._cap is None:
                if not self._open():
                    return
                start, index, prev_gray = self.clock.now(), 0, None
            if paced and not self._sleep_until(start + index / self.fps):
                return
            ok, bgr = self._cap.read()
            if not ok:
                if self.spec.is_file and not self.loop:
                    self._end()
                    return
                # The file's end (looping), or a live source that stopped delivering: no heartbeats
                # meanwhile, so the monitor sees a stall; reopened at once, then with Retry's waits.
                if not self.spec.is_file:
                    log.warning("camera %s delivered no frame; reopening", self.spec.text)
                self._release()
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
                self.flow.offer(index, t, self.flow.gray(bgr))


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
    """A microphone through sounddevice (PortAudio), opened at the model's rate when the device
    allows it, else at its own rate and resampled block by block.

    Opened by the thread and reopened when its stream stops or goes quiet (no callback for
    `stall_s`): a microphone missing at start, unplugged or whose sound server restarts is a dead
    sensor until it is back.
    """

    def __init__(self, spec: SourceSpec, sample_rate: int, ring: AudioRing, monitor: LivenessMonitor,
                 clock: Clock, stop: threading.Event, content: ContentThresholds,
                 timeouts: SourceTimeouts = SourceTimeouts(), stall_s: float = 2.0):
        super().__init__(ring, monitor, clock, stop, content)
        try:
            import sounddevice as sd
        except (ImportError, OSError) as e:
            raise ConfigError(f"audio source {spec.text!r} needs sounddevice and PortAudio ({e}): "
                              "`pip install 'karmma-edge[audio]'` and `sudo apt install libportaudio2`") from None
        self._sd = sd
        self.spec = spec
        self.device = None if spec.target in ("", "default") else spec.target
        self.rate = sample_rate
        self.device_rate = sample_rate
        self.stall_s = stall_s
        self.retry = Retry(f"microphone {spec.text}", timeouts)
        self._last_callback = 0.0

    @property
    def source_error(self) -> str | None:
        return self.retry.error

    def _open(self):
        sd = self._sd
        try:
            try:
                sd.check_input_settings(device=self.device, channels=1, samplerate=self.rate)
                device_rate = self.rate
            except sd.PortAudioError:
                device_rate = int(sd.query_devices(self.device, "input")["default_samplerate"])
            stream = sd.InputStream(device=self.device, channels=1, samplerate=device_rate, dtype="float32",
                                    blocksize=int(device_rate * AUDIO_BLOCK_S), callback=self._callback)
            self.device_rate = device_rate
            self._last_callback = self.clock.now()
            stream.start()
            return stream
        except (sd.PortAudioError, ValueError) as e:
            raise ConfigError(f"audio source {self.spec.text!r} cannot be opened: {e}; "
                              "`python -m sounddevice` lists the input devices") from None

    def _callback(self, indata, frames, time_info, status) -> None:
        self._last_callback = self.clock.now()
        block = indata[:, 0].copy()
        if self.device_rate != self.rate:
            block = resample(block, int(round(block.size * self.rate / self.device_rate)))
        self._deliver(self.clock.now(), block)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                stream = self._open()
            except KarmmaError as e:
                self.stop_event.wait(self.retry.failed(str(e)))
                continue
            self.retry.succeeded()
            try:
                while not self.stop_event.wait(0.1):
                    if not stream.active or self.clock.now() - self._last_callback > self.stall_s:
                        log.warning("microphone %s stopped delivering; reopening", self.spec.text)
                        break
            finally:
                try:
                    stream.close(ignore_errors=True)
                except self._sd.PortAudioError:
                    pass
