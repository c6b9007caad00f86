"""Real sensors on loopback for the runtime tests and scripts/soak_daemon.py (no pytest here):

- `RtspCamera`: tests/rtsp_camera.py (GStreamer's RTSP server, run by Debian's /usr/bin/python3,
  which has python3-gi) as a process that can be killed and started again on the same port;
- `VirtualMic`: a PulseAudio null sink whose monitor PortAudio reads (through ALSA's pulse device,
  with PULSE_SOURCE naming the monitor), and `play_wav` to play into it.

`rtsp_missing()` / `pulse_missing()` say what is not installed (None when all is there).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).with_name("rtsp_camera.py")


def rtsp_missing() -> str | None:
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "assert all(Gst.ElementFactory.find(e) for e in ('videotestsrc', 'jpegenc', 'rtpjpegpay'))")
    if not Path(SYSTEM_PYTHON).exists():
        return f"the RTSP camera needs Debian's {SYSTEM_PYTHON} with python3-gi"
    r = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    return None if r.returncode == 0 else ("GStreamer's RTSP server needs Debian's gir1.2-gst-rtsp-server-1.0, "
                                           "python3-gi, gstreamer1.0-plugins-base and -good: " + r.stderr[-300:])


class RtspCamera:
    """`start` serves rtsp://127.0.0.1:PORT/cam (a free port the first time, the same one after a
    `stop`); `stop` kills the server as a camera losing power would go."""

    def __init__(self, port: int = 0):
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.ready_at: float | None = None   # wall clock of the newest start

    def start(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            self.proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), str(self.port)], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            line = self.proc.stdout.readline()
            if line.startswith("ready "):
                self.port = int(line.split()[1])
                self.ready_at = time.time()
                return
            self.proc.wait()
            if time.monotonic() > deadline:   # the port may linger for a moment after a stop
                raise RuntimeError(f"the RTSP server did not start on port {self.port}")
            time.sleep(0.5)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def pulse_missing() -> str | None:
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            return f"the virtual microphone needs {tool}: apt-get install pulseaudio pulseaudio-utils"
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as e:
        return f"the virtual microphone needs sounddevice and libportaudio2 ({e})"
    return None


class VirtualMic:
    """A PulseAudio null sink (the server started if none runs); `env` makes PortAudio's `pulse`
    device read its monitor. Raises RuntimeError when PulseAudio cannot be had."""

    def __init__(self, rate: int = 24000):
        if subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
            subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "--disallow-exit"],
                           capture_output=True)
            deadline = time.monotonic() + 20
            while subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("PulseAudio did not start here (pulseaudio --daemonize)")
                time.sleep(0.2)
        self.name = f"karmma_mic_{uuid.uuid4().hex[:8]}"
        r = subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={self.name}", f"rate={rate}",
                            "channels=1"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"cannot make a PulseAudio null sink: {r.stderr}")
        self.module = r.stdout.strip()
        self.env = {"PULSE_SOURCE": f"{self.name}.monitor"}
        self.source = "mic:pulse"

    def play_wav(self, wav: Path) -> subprocess.Popen:
        return subprocess.Popen(["paplay", f"--device={self.name}", str(wav)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def close(self) -> None:
        subprocess.run(["pactl", "unload-module", self.module], capture_output=True)
