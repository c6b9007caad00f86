#!/usr/bin/env python3
"""Soak test of `karmma-edge serve` (issue 6 acceptance 3, issue 14 acceptance 3 and 4; a benchmark,
not a test).

Runs the daemon as a subprocess for N minutes, samples its RSS with psutil and its /metrics, reads
every prediction from /v1/events, and reports RSS growth (from the first sample after warm-up to the
median of the last minute's samples; target < 5 %), dropped windows (target 0) and gaps in `seq`.

Sources: looping files by default (a video made from the dataset's RGB JPEGs and a synthetic WAV,
as in tests/test_runtime_media.py; --video/--wav for your own). With --rtsp the camera is a real
RTSP server on loopback (tests/rtsp_camera.py: GStreamer's RTSP server, Debian's packages), and with
--virtual-mic the microphone is PortAudio reading a PulseAudio null sink that a WAV is played into
(tests/sensor_rigs.py). With --rtsp the camera is also:

- down when the daemon starts and up --camera-late-s later (issue 14 acceptance 3): the report gives
  the time from the server's start to the first prediction of a profile with rgb (target <= 2 s);
- killed at --outage-at-s for --outage-s and started again (acceptance 4): the report gives the
  stall (kill -> first audio-only prediction) and the recovery (restart -> first rgb prediction).

    python scripts/soak_daemon.py --bundle BUNDLE --data DATASET_ROOT [--minutes 10] [--rtsp --virtual-mic]
"""

from __future__ import annotations

import argparse
import json
import re
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def metric(text: str, name: str) -> float:
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.M):
        total += float(m.group(1))
    return total


class Events(threading.Thread):
    """Every prediction from /v1/events as (arrival wall time, seq, profile)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[float, int, str]] = []

    def run(self) -> None:
        try:
            with requests.get(f"{self.url}/v1/events", stream=True, timeout=30) as r:
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith("data: "):
                        p = json.loads(line[6:])
                        self.seen.append((time.time(), p["seq"], p["profile"]))
        except (requests.RequestException, ValueError):
            pass

    def first_after(self, t: float, has_rgb: bool) -> float | None:
        for at, _, profile in list(self.seen):
            if at >= t and ("rgb" in profile.split("+")) == has_rgb:
                return at
        return None


def healthz_burst(url: str, n: int) -> dict:
    """`n` concurrent GET /healthz, each on its own connection (issue 14 acceptance 1: 200 all
    answered within 5 s)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> int:
        try:
            return requests.get(f"{url}/healthz", timeout=30).status_code
        except requests.RequestException:
            return 0

    start = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(one, range(n)))
    return {"requests": n, "answered_200": codes.count(200), "all_answered_s": round(time.monotonic() - start, 2)}


def looping_player(mic, wav: Path, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            player = mic.play_wav(wav)
            while player.poll() is None:
                if stop.wait(0.2):
                    player.kill()
            player.wait()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--data", type=Path, help="dataset root whose RGB frames make the test video")
    ap.add_argument("--video", type=Path)
    ap.add_argument("--wav", type=Path)
    ap.add_argument("--rtsp", action="store_true", help="the camera is a real RTSP server on loopback")
    ap.add_argument("--virtual-mic", action="store_true", help="the microphone is a PulseAudio null sink via PortAudio")
    ap.add_argument("--camera-late-s", type=float, default=10.0, help="--rtsp: the camera comes up this late")
    ap.add_argument("--outage-at-s", type=float, default=300.0, help="--rtsp: kill the RTSP server then")
    ap.add_argument("--outage-s", type=float, default=10.0, help="--rtsp: and start it again this much later")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before the RSS baseline is taken")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--burst", type=int, default=200, help="concurrent GET /healthz fired once after warm-up")
    ap.add_argument("--config", type=Path, help="serve config (YAML) for the daemon")
    ap.add_argument("--json", type=Path, help="also write the samples and the summary here")
    args = ap.parse_args()

    from sensor_rigs import RtspCamera, VirtualMic

    work = Path(tempfile.mkdtemp(prefix="karmma-soak-"))
    video, wav = args.video, args.wav
    if (video is None and not args.rtsp) or wav is None:
        if args.data is None:
            ap.error("give --data (to make test media) or --video and --wav")
        from test_runtime_media import make_media

        media = make_media(args.data, work, video_s=8.0, wav_s=11.0)   # different lengths: loops drift apart
        video, wav = video or media.video, wav or media.wav
    camera = RtspCamera() if args.rtsp else None
    mic = VirtualMic() if args.virtual_mic else None
    stop_playing = threading.Event()
    if camera is not None:
        camera.start()     # once for a free port; down again until --camera-late-s
        camera.stop()
    if mic is not None:
        looping_player(mic, wav, stop_playing)
    config = yaml.safe_load(args.config.read_text()) if args.config else {}
    config.setdefault("sources", {}).setdefault("read_timeout_s", 2.0)
    (work / "serve.yaml").write_text(yaml.safe_dump(config))

    jsonl = work / "predictions.jsonl"
    cmd = [sys.executable, "-m", "karmma_edge.cli", "serve", "--bundle", str(args.bundle),
           "--rgb", camera.url if camera else f"file:{video}", "--audio", mic.source if mic else f"file:{wav}",
           "--http", "127.0.0.1:0", "--loop", "--realtime", "--jsonl", str(jsonl), "--log-level", "warning",
           "--config", str(work / "serve.yaml")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**__import__("os").environ,
                                                                          **(mic.env if mic else {})})
    url = None
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            line = proc.stdout.readline()
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].strip()
    if url is None:
        proc.kill()
        print("the daemon did not start", file=sys.stderr)
        return 1
    events = Events(url)
    events.start()

    ps = psutil.Process(proc.pid)
    samples: list[dict] = []
    marks: dict[str, float] = {}
    burst: dict | None = None
    start = time.monotonic()
    end = start + args.minutes * 60
    next_sample = start + args.interval
    try:
        while time.monotonic() < end:
            time.sleep(0.1)
            elapsed = time.monotonic() - start
            if camera is not None:
                if "camera_up" not in marks and elapsed >= args.camera_late_s:
                    camera.start()
                    marks["camera_up"] = camera.ready_at
                if "outage" not in marks and elapsed >= args.outage_at_s:
                    camera.stop()
                    marks["outage"] = time.time()
                if "outage" in marks and "restart" not in marks and elapsed >= args.outage_at_s + args.outage_s:
                    camera.start()
                    marks["restart"] = camera.ready_at
            if args.burst and "burst" not in marks and elapsed >= args.warmup:
                marks["burst"] = time.time()
                burst = healthz_burst(url, args.burst)
                print(f"{args.burst} concurrent /healthz: {burst}", flush=True)
            if time.monotonic() < next_sample:
                continue
            next_sample += args.interval
            if proc.poll() is not None:
                print(f"the daemon exited with {proc.returncode}", file=sys.stderr)
                return 1
            text = requests.get(f"{url}/metrics", timeout=10).text
            sample = {"t_s": round(elapsed, 1), "rss_mib": ps.memory_info().rss / 2**20,
                      "windows": metric(text, "karmma_windows_total"),
                      "predictions": metric(text, "karmma_predictions_total"),
                      "dropped": metric(text, "karmma_dropped_windows_total"),
                      "switches": metric(text, "karmma_profile_switches_total"),
                      "deaths": metric(text, "karmma_sensor_deaths_total"),
                      "switch_latency_sum": metric(text, "karmma_profile_switch_latency_seconds_sum"),
                      "switch_latency_count": metric(text, "karmma_profile_switch_latency_seconds_count")}
            samples.append(sample)
            print(f"{sample['t_s']:7.1f} s  RSS {sample['rss_mib']:7.1f} MiB  windows {sample['windows']:6.0f}  "
                  f"dropped {sample['dropped']:.0f}  switches {sample['switches']:.0f}", flush=True)
    finally:
        stop_playing.set()
        sigterm_at = time.monotonic()
        proc.terminate()
        code = proc.wait(timeout=30)
        exit_s = time.monotonic() - sigterm_at
        if camera is not None:
            camera.stop()
        if mic is not None:
            mic.close()

    base = next((s for s in samples if s["t_s"] >= args.warmup), samples[0])
    tail = [s["rss_mib"] for s in samples if s["t_s"] >= samples[-1]["t_s"] - 60] or [samples[-1]["rss_mib"]]
    growth = 100.0 * (statistics.median(tail) - base["rss_mib"]) / base["rss_mib"]
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    seqs = [r["seq"] for r in records]
    summary = {"minutes": args.minutes, "rss_baseline_mib": round(base["rss_mib"], 1),
               "rss_end_mib": round(statistics.median(tail), 1),
               "rss_peak_mib": round(max(s["rss_mib"] for s in samples), 1),
               "rss_growth_pct": round(growth, 2), "windows": samples[-1]["windows"],
               "predictions": samples[-1]["predictions"], "dropped_windows": samples[-1]["dropped"],
               "seq_gaps": int(np.sum(np.diff(seqs) != 1)) if len(seqs) > 1 else 0,
               "profile_switches": samples[-1]["switches"], "sensor_deaths": samples[-1]["deaths"],
               "switch_latency_mean_s": round(samples[-1]["switch_latency_sum"] / samples[-1]["switch_latency_count"], 3)
               if samples[-1]["switch_latency_count"] else None,
               "jsonl_lines": len(records), "exit_code": code, "sigterm_to_exit_s": round(exit_s, 2),
               "healthz_burst": burst}

    def since(mark: str, has_rgb: bool) -> float | None:
        at = events.first_after(marks[mark], has_rgb) if mark in marks else None
        return None if at is None else round(at - marks[mark], 2)

    if camera is not None:
        summary["camera_up_to_rgb_profile_s"] = since("camera_up", True)
        summary["outage_to_audio_only_s"] = since("outage", False)
        summary["restart_to_rgb_profile_s"] = since("restart", True)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "samples": samples}, indent=2) + "\n")
    ok = growth < 5.0 and summary["dropped_windows"] == 0 and code == 0
    if camera is not None:
        ok = ok and None not in (summary["camera_up_to_rgb_profile_s"], summary["outage_to_audio_only_s"],
                                 summary["restart_to_rgb_profile_s"])
    print("PASS" if ok else "FAIL", "(targets: RSS growth < 5%, 0 dropped windows, exit 0; with --rtsp a stall "
                                    "and a recovery)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
