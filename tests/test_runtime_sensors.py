"""Real sensors, not files (issue 14): an RTSP camera served by GStreamer's RTSP server on loopback,
stopped and restarted under the running daemon, and a microphone read through PortAudio from a
PulseAudio null sink's monitor that a WAV is played into.

Needs Debian's packages (`.ci/run` installs them): gir1.2-gst-rtsp-server-1.0, python3-gi,
gstreamer1.0-plugins-{base,good} for the camera; pulseaudio, pulseaudio-utils, libportaudio2 and
libasound2-plugins for the microphone. Each test skips, naming what is missing, without them.
No assertion is about time: the tests wait for conditions with generous deadlines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from sensor_rigs import RtspCamera, VirtualMic, pulse_missing, rtsp_missing
from test_runtime_daemon import start_daemon, stop, terminate
from test_runtime_media import make_media

SENSOR_CONFIG = {"sources": {"open_timeout_s": 2.0, "read_timeout_s": 1.0, "retry_max_s": 1.0}}


@pytest.fixture
def rtsp_camera():
    missing = rtsp_missing()
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


@pytest.mark.timeout(120)
def test_missing_microphone_at_start_is_a_dead_sensor(tiny_bundle: Path, media, tmp_path: Path) -> None:
    """Issue 14 row 15 for the microphone: a device that is not there starts dead and is retried,
    while the camera is served."""
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as e:
        pytest.skip(f"the microphone needs sounddevice and libportaudio2 ({e})")
    daemon = start_daemon(tiny_bundle, tmp_path, "--rgb", f"file:{media.video}", "--audio", "mic:no-such-device",
                          "--loop", config=SENSOR_CONFIG)
    try:
        health = daemon.wait_for(lambda h: h["active_profile"] and h["sensors"]["audio"]["error"],
                                 "the camera served while the microphone is missing")
        assert "audio" not in health["active_profile"].split("+")
        assert "mic:no-such-device" in health["sensors"]["audio"]["error"]
        assert terminate(daemon) == 0
        assert "Traceback" not in daemon.log()
    finally:
        stop(daemon)


@pytest.fixture
def virtual_mic():
    missing = pulse_missing()
    if missing:
        pytest.skip(missing)
    try:
        mic = VirtualMic()
    except RuntimeError as e:
        pytest.skip(str(e))
    yield mic
    mic.close()


@pytest.mark.timeout(180)
def test_microphone_through_portaudio_from_a_virtual_source(tiny_bundle: Path, tmp_path: Path,
                                                            virtual_mic: VirtualMic) -> None:
    """The daemon hears the WAV played into the virtual microphone (live, a level near the WAV's),
    calls it silent when the playing stops, and live again when it resumes."""
    wav = tmp_path / "tone.wav"   # steady, so any 20 ms block has the file's level
    t = np.arange(24000 * 60) / 24000
    soundfile.write(str(wav), 0.3 * np.sin(2 * np.pi * 440 * t), 24000, subtype="PCM_16")
    player = virtual_mic.play_wav(wav)
    daemon = start_daemon(tiny_bundle, tmp_path, "--audio", virtual_mic.source, config=SENSOR_CONFIG,
                          env=virtual_mic.env)
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
        player = virtual_mic.play_wav(wav)
        daemon.wait_for(lambda h: h["sensors"]["audio"]["live"], "the microphone live again")
        assert daemon.health()["predictions"] > 0
        assert terminate(daemon) == 0
    finally:
        player.kill()
        stop(daemon)
