"""The real daemon as a subprocess on file sources, read over real HTTP (issue 6, acceptance 1, 2, 4).

No test here asserts a duration: they wait, with generous deadlines, for conditions. The timing
figures (switch latency, SIGTERM to exit) are measured by scripts/soak_daemon.py and /metrics.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from test_runtime_media import make_media
from conftest import karmma_cli

# Short strides so each test runs in seconds; the hold keeps upgrades from flapping.
TEST_CONFIG = {
    "inference": {"stride_s": 0.25, "queue_size": 8},
    "selector": {"upgrade_hold_s": 0.5},
    "http": {"sse_keepalive_s": 1.0},
}
TOKEN = "s3cret-test-token-0123"


class Daemon:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path, token: str | None = None):
        self.proc, self.url, self.log_path = proc, url, log
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.rsplit("/", 1)[1].rsplit(":", 1)
        return host, int(port)

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers=self.headers | kw.pop("headers", {}), timeout=10, **kw)

    def health(self) -> dict:
        r = self.get("/healthz")
        r.raise_for_status()
        return r.json()

    def metric(self, name: str) -> float:
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, predicate, what: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        health = None
        while time.monotonic() < deadline:
            health = self.health()
            if predicate(health):
                return health
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last /healthz: {health}")


def start_daemon(bundle: Path, tmp: Path, *args: str, config: dict | None = None, env: dict | None = None,
                 preexec_fn=None) -> Daemon:
    cfg = {**TEST_CONFIG, **(config or {})}
    cfg["http"] = {**TEST_CONFIG["http"], **(config or {}).get("http", {})}
    path = tmp / "serve.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "karmma_edge.cli", "serve", "--bundle", str(bundle), "--http", "127.0.0.1:0",
           "--config", str(path), "--log-level", "warning", *args]
    log = tmp / f"daemon-{time.monotonic_ns()}.log"
    # stderr to a file: a pipe nobody reads would block the daemon once it filled.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
                            env={**os.environ, **(env or {})}, preexec_fn=preexec_fn)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if "listening on " in line:
                return Daemon(proc, line.split("listening on ", 1)[1].strip(), log,
                              cfg["http"].get("token"))
        if proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    raise AssertionError(f"daemon did not start: {log.read_text()}")


def stop(daemon: Daemon) -> None:
    if daemon.proc.poll() is None:
        daemon.proc.kill()
        daemon.proc.wait()


def terminate(daemon: Daemon) -> int:
    daemon.proc.send_signal(signal.SIGTERM)
    return daemon.proc.wait(timeout=30)


class EventReader(threading.Thread):
    """Reads /v1/events with requests' streaming and keeps every prediction."""

    def __init__(self, url: str, headers: dict | None = None):
        super().__init__(daemon=True)
        self.response = requests.get(f"{url}/v1/events", stream=True, timeout=10, headers=headers or {})
        self.events: list[dict] = []
        self.comments = 0

    def run(self) -> None:
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))
                elif line.startswith(":"):
                    self.comments += 1
        except (requests.RequestException, ValueError, AttributeError):
            # Closed by the test or the daemon (possibly mid-line); urllib3 raises AttributeError
            # when another thread closes the response under a read.
            pass


def raw_exchange(daemon: Daemon, data: bytes, read_timeout: float = 15.0) -> bytes:
    """Send raw bytes on a fresh connection, then read until the server closes it (or the timeout)."""
    with socket.create_connection(daemon.address, timeout=read_timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
        return out


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.") else 0


@pytest.fixture(scope="module")
def media(tiny_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return make_media(tiny_data_root, tmp_path_factory.mktemp("media"), video_s=2.0, wav_s=6.0)


@pytest.mark.timeout(120)
def test_video_ends_then_audio_then_mute(tiny_bundle: Path, media, tmp_path: Path) -> None:
    """Acceptance 1 and 2 of issue 6. The video's end is the time the daemon's camera found no next
    frame (`sensors.rgb.ended_at` in /healthz, wall clock); after it every prediction is `audio`."""
    daemon = start_daemon(tiny_bundle, tmp_path, "--rgb", f"file:{media.video}", "--audio", f"file:{media.wav}")
    try:
        reader = EventReader(daemon.url)
        reader.start()
        ended = daemon.wait_for(lambda h: h["sensors"]["rgb"]["ended_at"] is not None, "the video to end")
        ended_at = ended["sensors"]["rgb"]["ended_at"]
        daemon.wait_for(lambda h: h["last_prediction_seq"] and any(
            e["window_end"] > ended_at + 1.0 for e in reader.events), "predictions after the video's end")
        events = list(reader.events)

        before = [e for e in events if e["window_end"] < ended_at]
        assert before, "no prediction while the video played"
        both = [e for e in before if {"rgb", "audio"} <= set(e["profile"].split("+"))]
        assert both, f"no rgb-and-audio profile while both were live: {[e['profile'] for e in before]}"
        after = [e for e in events if e["window_end"] >= ended_at]
        assert all(e["profile"] == "audio" for e in after), [e["profile"] for e in after]
        assert after[0]["live"] == ["audio"]
        top = after[0]
        assert {"verb", "noun", "action", "latency_ms", "seq", "window_end", "run_id"} <= set(top)
        assert len(top["action"]) == 5 and top["action"][0]["score"] >= top["action"][1]["score"]
        assert top["verb"][0]["name"] and " " in top["action"][0]["name"]
        assert {e["run_id"] for e in events} == {daemon.health()["run_id"]}

        # Acceptance 2: the switch lost no window, and its latency is exported.
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert daemon.metric("karmma_dropped_windows_total") == 0
        assert daemon.metric("karmma_profile_switch_latency_seconds_count") >= 1
        assert daemon.metric("karmma_last_profile_switch_latency_seconds") > 0

        r = requests.post(f"{daemon.url}/v1/sensors/audio", json={"enabled": False}, timeout=5)
        assert r.status_code == 200 and r.json()["muted"] == ["audio"]
        health = daemon.wait_for(lambda h: h["live"] == [] and h["active_profile"] is None, "no live sensor")
        assert health["status"] == "idle" and health["active_profile"] is None
        assert health["sensors"]["audio"]["reason"] == "muted"
        time.sleep(0.5)
        assert daemon.proc.poll() is None and daemon.health()["live"] == []
    finally:
        stop(daemon)


@pytest.mark.timeout(120)
def test_sigterm_exits_0_with_jsonl_complete(tiny_bundle: Path, media, tmp_path: Path) -> None:
    """Issue 6 acceptance 4 (SIGTERM), the bearer token on POST, and an SSE client hanging up."""
    jsonl = tmp_path / "predictions.jsonl"
    daemon = start_daemon(tiny_bundle, tmp_path, "--rgb", f"file:{media.video}", "--audio", f"file:{media.wav}",
                          "--jsonl", str(jsonl), "--loop", config={"http": {"token": TOKEN}})
    try:
        reader = EventReader(daemon.url, daemon.headers)
        reader.start()
        daemon.wait_for(lambda h: (h["predictions"] or 0) >= 3, "three predictions")
        reader.response.close()   # a client disconnecting must not disturb the daemon

        url = f"{daemon.url}/v1/sensors/rgb"
        assert requests.post(url, json={"enabled": False}, timeout=5).status_code == 401
        bad = requests.post(url, json={"enabled": False}, headers={"Authorization": "Bearer wrong"}, timeout=5)
        assert bad.status_code == 401 and bad.headers["WWW-Authenticate"].startswith("Bearer")
        auth = daemon.headers
        assert requests.post(f"{daemon.url}/v1/sensors/nose", json={"enabled": False}, headers=auth,
                             timeout=5).status_code == 404
        # A form post (what a page on another origin can send without a preflight) is refused.
        form = requests.post(url, data='{"enabled": false}', timeout=5,
                             headers=auth | {"Content-Type": "text/plain"})
        assert form.status_code == 415
        assert requests.get(url, headers=auth, timeout=5).status_code == 405
        ok = requests.post(url, json={"enabled": False}, headers=auth, timeout=5)
        assert ok.status_code == 200
        health = daemon.wait_for(lambda h: h["active_profile"] == "audio", "rgb muted")
        assert health["sensors"]["flow"]["live"] is False   # flow comes from the muted camera

        assert terminate(daemon) == 0
        text = jsonl.read_text()
        assert text.endswith("\n")
        records = [json.loads(line) for line in text.splitlines()]
        assert len(records) >= health["predictions"]
        assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
        assert "Traceback" not in daemon.log()
    finally:
        stop(daemon)


def serve_error(*args: str) -> subprocess.CompletedProcess:
    return karmma_cli("serve", *args, timeout=120)


@pytest.mark.timeout(120)
def test_unreadable_camera_file_is_exit_2_naming_the_source(tiny_bundle: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all")
    fifo = tmp_path / "camera.fifo"
    os.mkfifo(fifo)
    for source in (f"file:{tmp_path / 'missing.avi'}", f"file:{junk}", f"file:{fifo}", f"file:{tmp_path}", "webcam"):
        r = serve_error("--bundle", str(tiny_bundle), "--rgb", source, "--http", "127.0.0.1:0")
        assert r.returncode == 2, (source, r.stderr)
        assert source in r.stderr and "Traceback" not in r.stderr


@pytest.mark.timeout(120)
def test_tampered_bundle_and_bad_config_are_exit_2(tiny_bundle: Path, media, tmp_path: Path) -> None:
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    onnx = next(bundle.glob("profiles/audio/model.int8.onnx"))
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF
    onnx.write_bytes(bytes(data))
    r = serve_error("--bundle", str(bundle), "--audio", f"file:{media.wav}", "--http", "127.0.0.1:0")
    assert r.returncode == 2 and "model.int8.onnx" in r.stderr and "SHA-256" in r.stderr, r.stderr

    # Issue 14 row 14: a manifest that is JSON but not an object.
    (bundle / "manifest.json").write_text("[1, 2, 3]")
    r = serve_error("--bundle", str(bundle), "--audio", f"file:{media.wav}", "--http", "127.0.0.1:0")
    assert r.returncode == 2 and "manifest.json" in r.stderr and "Traceback" not in r.stderr, r.stderr

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"inference": {"stride_s": -1}, "liveness": {"stall_timeot_s": 1}}))
    r = serve_error("--bundle", str(tiny_bundle), "--audio", f"file:{media.wav}", "--config", str(cfg))
    assert r.returncode == 2
    assert "inference.stride_s" in r.stderr and "liveness.stall_timeot_s" in r.stderr, r.stderr
