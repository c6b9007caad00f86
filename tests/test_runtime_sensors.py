"""Real sensors, not files (issue 14): an RTSP camera served by GStreamer's RTSP server on loopback,
stopped and restarted under the running daemon, and a microphone read through PortAudio from a
PulseAudio null sink's monitor that a WAV is played into.

Needs Debian's packages (`.ci/run` installs them): gir1.2-gst-rtsp-server-1.0, python3-gi,
gstreamer1.0-plugins-{base,good} for the camera; pulseaudio, pulseaudio-utils, libportaudio2 and
libasound2-plugins for the microphone. Each test skips, naming what is missing, without them.
No assertion is about time: the tests wait for conditions with generous deadlines.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile

from test_runtime_daemon import start_daemon, stop, terminate
from test_runtime_media import make_media

SYSTEM_PYTHON = "/usr/bin/python3"    # Debian's, which has python3-gi
RTSP_SERVER = Path(__file__).with_name("rtsp_camera.py")
SENSOR_CONFIG = {"sources": {"open_timeout_s": 2.0, "read_timeout_s": 1.0, "retry_max_s": 1.0}}


def _gst_rtsp_missing() -> str | None:
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "assert all(Gst.ElementFactory.find(e) for e in ('videotestsrc', 'jpegenc', 'rtpjpegpay'))")
    if not Path(SYSTEM_PYTHON).exists():
        return f"no {SYSTEM_PYTHON}"
    r = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    return None if r.returncode == 0 else ("GStreamer's RTSP server needs Debian's gir1.2-gst-rtsp-server-1.0, "
                                           "python3-gi, gstreamer1.0-plugins-base and -good: " + r.stderr[-300:])


class RtspCamera:
    """tests/rtsp_camera.py as a process; `start` again after `stop` serves the same port."""

    def __init__(self):
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            self.proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(self.port)], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            line = self.proc.stdout.readline()
            if line.startswith("ready "):
                self.port = int(line.split()[1])
                return
            self.proc.wait()
            if time.monotonic() > deadline:   # the port may linger for a moment after a stop
                raise AssertionError(f"the RTSP server did not start on port {self.port}")
            time.sleep(0.5)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)   # as a camera losing power: no goodbye
            self.proc.wait()


@pytest.fixture
def rtsp_camera():
    missing = _gst_rtsp_missing()
    if missing:
        pytest.skip(missing)
    camera = RtspCamera()
    camera.start()       # once, to learn a free port; the test decides when it is really up
    camera.stop()
    yield camera
    camera.stop()


@pytest.fixture(scope="module")
def media(tiny_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return make_media(tiny_data_root, tmp_path_factory.mktemp("sensor-media"), video_s=1.0, wav_s=6.0)


@pytest.mark.timeout(240)
def test_rtsp_camera_down_at_start_then_up_then_restarted(tiny_bundle: Path, media, tmp_path: Path,
                                                          rtsp_camera: RtspCamera) -> None:
    """Acceptance 3: the camera is down when the daemon starts: audio-only; when it comes up, the
    camera's profile, without a restart. Then the RTSP server dies and comes back: a stall (the
    camera dead as `stalled`, audio-only meanwhile) and a recovery."""
    daemon = start_daemon(tiny_bundle, tmp_path, "--rgb", rtsp_camera.url, "--audio", f"file:{media.wav}", "--loop",
                          config=SENSOR_CONFIG)
    try:
        first = daemon.wait_for(lambda h: h["active_profile"] == "audio" and h["sensors"]["rgb"]["error"],
                                "audio-only while the camera is down")
        assert first["sensors"]["rgb"]["live"] is False
        rtsp_camera.start()
        up = daemon.wait_for(lambda h: "rgb" in (h["active_profile"] or "").split("+"), "the camera's profile",
                             timeout=60)
        assert up["run_id"] == first["run_id"] and daemon.proc.poll() is None
        assert up["sensors"]["rgb"]["error"] is None and "audio" in up["active_profile"]

        rtsp_camera.stop()
        down = daemon.wait_for(lambda h: not h["sensors"]["rgb"]["live"], "the camera dead after its server died")
        assert down["sensors"]["rgb"]["reason"] in ("stalled", "no data", "recovering")
        daemon.wait_for(lambda h: h["active_profile"] == "audio", "audio-only while the server is down")
        rtsp_camera.start()
        back = daemon.wait_for(lambda h: "rgb" in (h["active_profile"] or "").split("+"), "the camera back",
                               timeout=60)
        assert back["run_id"] == first["run_id"]
        assert daemon.metric("karmma_sensor_deaths_total") >= 1
        assert terminate(daemon) == 0
        assert "Traceback" not in daemon.log()
    finally:
        stop(daemon)


# --- the microphone --------------------------------------------------------------------------------


def _pulse_missing() -> str | None:
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            return f"the microphone test needs {tool}: apt-get install pulseaudio pulseaudio-utils"
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as e:
        return f"the microphone test needs sounddevice and libportaudio2 ({e})"
    return None


@pytest.fixture
def virtual_mic():
    """A PulseAudio null sink (started here if no server runs); yields its name. What is played into
    the sink comes out of its monitor, which PortAudio reads through ALSA's pulse device."""
    missing = _pulse_missing()
    if missing:
        pytest.skip(missing)
    if subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
        subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "--disallow-exit"],
                       capture_output=True)
        deadline = time.monotonic() + 20
        while subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                pytest.skip("PulseAudio did not start here (pulseaudio --daemonize)")
            time.sleep(0.2)
    name = f"karmma_mic_{uuid.uuid4().hex[:8]}"
    r = subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={name}", "rate=24000", "channels=1"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make a PulseAudio null sink: {r.stderr}")
    yield name
    subprocess.run(["pactl", "unload-module", r.stdout.strip()], capture_output=True)


@pytest.mark.timeout(180)
def test_microphone_through_portaudio_from_a_virtual_source(tiny_bundle: Path, tmp_path: Path,
                                                            virtual_mic: str) -> None:
    """The daemon hears the WAV played into the virtual microphone (live, a level near the WAV's),
    calls it silent when the playing stops, and live again when it resumes."""
    wav = tmp_path / "tone.wav"   # steady, so any 20 ms block has the file's level
    t = np.arange(24000 * 60) / 24000
    soundfile.write(str(wav), 0.3 * np.sin(2 * np.pi * 440 * t), 24000, subtype="PCM_16")
    play = lambda: subprocess.Popen(["paplay", f"--device={virtual_mic}", str(wav)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    player = play()
    daemon = start_daemon(tiny_bundle, tmp_path, "--audio", "mic:pulse", config=SENSOR_CONFIG,
                          env={"PULSE_SOURCE": f"{virtual_mic}.monitor"})
    try:
        live = daemon.wait_for(lambda h: h["active_profile"] == "audio" and h["sensors"]["audio"]["live"],
                               "the microphone live", timeout=60)
        level = live["sensors"]["audio"]["level_dbfs"]
        expected = 20 * np.log10(np.sqrt(np.mean(np.square(soundfile.read(str(wav))[0]))))
        assert level is not None and abs(level - expected) < 6, (level, expected)
        player.kill()
        player.wait()
        quiet = daemon.wait_for(lambda h: not h["sensors"]["audio"]["live"], "silence once the WAV stops")
        assert quiet["sensors"]["audio"]["reason"] in ("silence", "stalled")
        player = play()
        daemon.wait_for(lambda h: h["sensors"]["audio"]["live"], "the microphone live again")
        assert daemon.health()["predictions"] > 0
        assert terminate(daemon) == 0
    finally:
        player.kill()
        stop(daemon)
