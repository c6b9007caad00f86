"""Runtime parts in isolation: liveness and hysteresis on a fake clock, rings, queues, content
checks, config errors, sources, WAV handling, and no torch in edge_runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from karmma_edge.edge_runtime.config import load_serve_config
from karmma_edge.edge_runtime.content import ContentThresholds, audio_issue, frame_issue
from karmma_edge.edge_runtime.events import CLOSED, EventHub
from karmma_edge.edge_runtime.liveness import LivenessMonitor, LivenessThresholds, judge
from karmma_edge.edge_runtime.predictions import action_top_k, softmax
from karmma_edge.edge_runtime.rings import AudioRing, FrameRing
from karmma_edge.edge_runtime.selector import ProfileSelector
from karmma_edge.edge_runtime.sources import parse_source
from karmma_edge.edge_runtime.wav import load_wav
from karmma_edge.edge_runtime.windows import PendingWindows, Window
from karmma_edge.errors import ConfigError
from karmma_edge.presets import CONFIG_DIR
from test_runtime_media import write_wav

TH = LivenessThresholds(stall_timeout_s=1.0, recover_s=0.3,
                        bad_content_s={"black": 1.0, "frozen": 3.0, "silence": 2.0, "clipping": 1.0},
                        flow_max_lag_s=0.5)


def feed(monitor: LivenessMonitor, name: str, start: float, stop: float, step: float = 0.1,
         issue: str | None = None) -> None:
    """Heartbeats every `step` seconds of fake time over [start, stop)."""
    for t in np.arange(start, stop, step):
        monitor.beat(name, float(t), issue)


def test_liveness_stall_and_recovery_on_a_fake_clock() -> None:
    m = LivenessMonitor(["audio"], TH)
    assert m.verdicts(0.0)["audio"].reason == "no data"
    feed(m, "audio", 0.0, 0.2)
    assert m.live(0.2) == frozenset()                       # still within recover_s of the first data
    feed(m, "audio", 0.2, 1.0)
    assert m.live(1.0) == {"audio"}
    assert m.live(1.9) == {"audio"} and m.live(2.0) == frozenset()   # last beat 0.9 + stall 1.0
    assert m.verdicts(2.0)["audio"].reason == "stalled"
    feed(m, "audio", 5.0, 5.2)
    assert m.verdicts(5.2)["audio"].reason == "recovering"
    feed(m, "audio", 5.2, 5.5)
    assert m.live(5.45) == {"audio"}


def test_liveness_bad_content_needs_its_hold_then_recovers() -> None:
    m = LivenessMonitor(["rgb"], TH)
    feed(m, "rgb", 0.0, 1.0)
    feed(m, "rgb", 1.0, 1.5, issue="black")                 # half a second of black: still live
    assert m.live(1.45) == {"rgb"}
    feed(m, "rgb", 1.5, 2.1, issue="black")
    assert m.verdicts(2.05)["rgb"].reason == "black"
    feed(m, "rgb", 2.1, 2.3)                                # good again, but not for recover_s yet
    assert m.verdicts(2.25)["rgb"].reason == "recovering"
    feed(m, "rgb", 2.3, 2.5)
    assert m.live(2.45) == {"rgb"}


def test_mute_end_and_flow_following_the_camera() -> None:
    m = LivenessMonitor(["rgb", "flow", "audio"], TH)
    feed(m, "rgb", 0.0, 1.0)
    feed(m, "audio", 0.0, 1.0)
    feed(m, "flow", 0.0, 0.4)                               # flow stopped keeping up at 0.3
    assert m.live(0.95) == {"rgb", "audio"}
    feed(m, "flow", 0.4, 1.0)
    assert m.live(0.95) == {"rgb", "flow", "audio"}
    m.set_muted("audio", True, 1.0)
    assert m.verdicts(1.0)["audio"].reason == "muted"
    m.end("rgb", 1.0)
    assert m.live(1.0) == frozenset()
    assert m.verdicts(1.0)["flow"].reason == "camera not live"
    m.set_muted("audio", False, 1.0)
    feed(m, "audio", 1.0, 1.5)
    assert m.live(1.45) == {"audio"}                        # unmute restarts recovery at 1.0
    assert judge(m.states()["rgb"], 1.5, TH).reason == "ended"


def test_selector_hysteresis_downgrades_at_once_upgrades_after_hold() -> None:
    sel = ProfileSelector(["rgb+audio", "rgb", "audio"], upgrade_hold_s=1.0)
    assert sel.select(["audio", "rgb"]) == "rgb+audio"      # the stateless API is unchanged
    assert sel.update({"rgb", "audio"}, 0.0) == "rgb+audio"
    assert sel.update({"audio"}, 0.5) == "audio"             # rgb died: switch at once
    assert sel.update({"rgb", "audio"}, 0.6) == "audio"      # back, but not for long enough yet
    assert sel.update({"audio"}, 0.7) == "audio"             # flicker: the candidate is forgotten
    assert sel.update({"rgb", "audio"}, 0.8) == "audio"
    assert sel.update({"rgb", "audio"}, 1.7) == "audio"
    assert sel.update({"rgb", "audio"}, 1.8) == "rgb+audio"  # stable for the hold
    assert sel.update(set(), 2.0) is None
    assert sel.update({"flow"}, 2.1) is None                 # no bundled profile fits


def test_rings_sample_by_time_and_keep_the_newest_audio() -> None:
    ring = FrameRing(4)
    for i in range(6):
        ring.push(float(i), np.full((2, 2), i, np.uint8))
    picked = ring.sample(np.array([0.0, 2.5, 3.0, 9.0]))
    assert picked[:, 0, 0].tolist() == [2, 2, 3, 5]          # before the oldest kept: the oldest
    audio = AudioRing(5)
    audio.push(0.1, np.arange(3, dtype=np.float32))
    assert audio.last(5).tolist() == [0, 0, 0, 1, 2]
    audio.push(0.2, np.arange(3, 7, dtype=np.float32))
    assert audio.last(5).tolist() == [2, 3, 4, 5, 6] and audio.latest_t == 0.2


def test_pending_windows_drop_the_oldest() -> None:
    q = PendingWindows(2)
    windows = [Window(i, float(i), "audio", frozenset({"audio"}), 0.0, {}) for i in range(3)]
    assert q.put(windows[0]) is None and q.put(windows[1]) is None
    assert q.put(windows[2]) is windows[0]
    assert [q.get(0.0).seq, q.get(0.0).seq, q.get(0.0)] == [1, 2, None]


def test_event_hub_never_blocks_on_a_slow_client() -> None:
    dropped = []
    hub = EventHub(per_client=2, on_drop=lambda: dropped.append(1))
    sub = hub.subscribe()
    for i in range(5):
        hub.publish((i, "{}"))
    assert len(dropped) == 3 and sub.get_nowait() == (3, "{}")
    hub.close()
    assert sub.get_nowait() == (4, "{}") and sub.get_nowait() is CLOSED


def test_content_checks() -> None:
    th = ContentThresholds()
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (8, 8), dtype=np.uint8)
    assert frame_issue(np.zeros((8, 8), np.uint8), None, th) == "black"
    assert frame_issue(frame, frame.copy(), th) == "frozen"
    assert frame_issue(frame, None, th) is None
    assert audio_issue(np.zeros(480, np.float32), th) == "silence"
    assert audio_issue(np.ones(480, np.float32), th) == "clipping"
    assert audio_issue(0.1 * rng.standard_normal(480).astype(np.float32), th) is None


def test_action_scores_are_verb_times_noun() -> None:
    pv, pn = softmax(np.array([2.0, 0.0])), softmax(np.array([0.0, 1.0, 3.0]))
    top = action_top_k(pv, pn, ["take", "put"], ["a", "b", "c"], 2)
    assert top[0].name == "take c" and top[0].score == pytest.approx(pv[0] * pn[2], abs=1e-5)


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("http:\n  port: 99999\nliveness:\n  silence_s: -1\n  nonsense: 2\n")
    with pytest.raises(ConfigError) as e:
        load_serve_config(cfg)
    assert "http.port" in str(e.value) and "liveness.silence_s" in str(e.value) and "liveness.nonsense" in str(e.value)
    ok = load_serve_config(None, {"sources.rgb": "cam:0", "http.port": 9000, "backend": None})
    assert ok.sources.rgb == "cam:0" and ok.http.port == 9000 and ok.http.host == "127.0.0.1"


def test_sources() -> None:
    assert parse_source("rtsp://cam.local/stream", "rgb").kind == "rtsp"
    assert parse_source("gst:nvarguscamerasrc ! appsink", "rgb").target == "nvarguscamerasrc ! appsink"
    assert parse_source("none", "audio").kind == "none"
    for bad, sensor in (("cam:front", "rgb"), ("mic:0", "rgb"), ("cam:0", "audio"), ("clip.mp4", "rgb")):
        with pytest.raises(ConfigError, match=bad.split(":")[0]):
            parse_source(bad, sensor)


def test_wav_at_another_rate_and_in_stereo_becomes_model_mono(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "s.wav", 1.5, 48000, channels=2)
    x = load_wav(wav, 24000)
    assert x.dtype == np.float32 and x.ndim == 1 and x.size == 36000
    assert 0.05 < float(np.abs(x).max()) <= 1.0
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVE")
    with pytest.raises(ConfigError, match="bad.wav"):
        load_wav(tmp_path / "bad.wav", 24000)


def test_edge_runtime_never_imports_torch() -> None:
    code = ("import sys, karmma_edge.edge_runtime.daemon, karmma_edge.edge_runtime.commands; "
            "bad = [m for m in ('torch', 'onnx', 'h5py') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_example_serve_configs_are_valid() -> None:
    for path in sorted(CONFIG_DIR.glob("serve-*.yaml")):
        load_serve_config(path)


def test_switch_latencies_for_bench(tiny_bundle: Path) -> None:
    from karmma_edge.bundle import Bundle
    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.measure.switching import switch_latencies

    bundle = Bundle(tiny_bundle)
    profiles = [p for p in ("rgb+audio", "audio") if p in bundle.profiles] or bundle.profiles[:2]
    engines = {p: create_engine("onnxruntime", bundle.artifact(p, "int8"), threads=1, spin=False).activate() for p in profiles}
    result = switch_latencies(engines, bundle.manifest.spec, bundle.manifest.classes, repeats=2)
    assert set(result) == {f"{a}->{b}" for a in profiles for b in profiles if a != b}
    assert all(v > 0 for v in result.values())
