#!/usr/bin/env python3
"""Soak test of `karmma-edge serve` (issue 6, acceptance 3; a benchmark, not a test).

Runs the daemon as a subprocess on looping file sources in real time for N minutes, samples its RSS
with psutil and its /metrics, and reports RSS growth (from the first sample after warm-up to the
median of the last minute's samples; target < 5%) and dropped windows (target 0).

    python scripts/soak_daemon.py --bundle BUNDLE --data DATASET_ROOT [--minutes 10]

The video is made from the dataset's RGB JPEGs (MJPG .avi) and the audio is a synthetic WAV, as in
tests/test_runtime_media.py; --video/--wav use your own files instead.
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
import time
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def metric(text: str, name: str) -> float:
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.M):
        total += float(m.group(1))
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--data", type=Path, help="dataset root whose RGB frames make the test video")
    ap.add_argument("--video", type=Path)
    ap.add_argument("--wav", type=Path)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before the RSS baseline is taken")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--config", type=Path, help="serve config (YAML) for the daemon")
    ap.add_argument("--json", type=Path, help="also write the samples and the summary here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="karmma-soak-"))
    video, wav = args.video, args.wav
    if video is None or wav is None:
        if args.data is None:
            ap.error("give --data (to make test media) or both --video and --wav")
        from test_runtime_media import make_media

        media = make_media(args.data, work, video_s=8.0, wav_s=11.0)   # different lengths: loops drift apart
        video, wav = video or media.video, wav or media.wav
    jsonl = work / "predictions.jsonl"
    cmd = [sys.executable, "-m", "karmma_edge.cli", "serve", "--bundle", str(args.bundle), "--rgb", f"file:{video}",
           "--audio", f"file:{wav}", "--http", "127.0.0.1:0", "--loop", "--realtime", "--jsonl", str(jsonl),
           "--log-level", "warning"] + (["--config", str(args.config)] if args.config else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
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

    ps = psutil.Process(proc.pid)
    samples: list[dict] = []
    start = time.monotonic()
    end = start + args.minutes * 60
    try:
        while time.monotonic() < end:
            time.sleep(args.interval)
            if proc.poll() is not None:
                print(f"the daemon exited with {proc.returncode}", file=sys.stderr)
                return 1
            text = requests.get(f"{url}/metrics", timeout=5).text
            sample = {"t_s": round(time.monotonic() - start, 1), "rss_mib": ps.memory_info().rss / 2**20,
                      "windows": metric(text, "karmma_windows_total"),
                      "predictions": metric(text, "karmma_predictions_total"),
                      "dropped": metric(text, "karmma_dropped_windows_total"),
                      "switches": metric(text, "karmma_profile_switches_total")}
            samples.append(sample)
            print(f"{sample['t_s']:7.1f} s  RSS {sample['rss_mib']:7.1f} MiB  windows {sample['windows']:6.0f}  "
                  f"dropped {sample['dropped']:.0f}  switches {sample['switches']:.0f}", flush=True)
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)

    base = next((s for s in samples if s["t_s"] >= args.warmup), samples[0])
    tail = [s["rss_mib"] for s in samples if s["t_s"] >= samples[-1]["t_s"] - 60] or [samples[-1]["rss_mib"]]
    growth = 100.0 * (statistics.median(tail) - base["rss_mib"]) / base["rss_mib"]
    lines = sum(1 for _ in open(jsonl))
    summary = {"minutes": args.minutes, "rss_baseline_mib": round(base["rss_mib"], 1),
               "rss_end_mib": round(statistics.median(tail), 1), "rss_peak_mib": round(max(s["rss_mib"] for s in samples), 1),
               "rss_growth_pct": round(growth, 2), "windows": samples[-1]["windows"],
               "predictions": samples[-1]["predictions"], "dropped_windows": samples[-1]["dropped"],
               "profile_switches": samples[-1]["switches"], "jsonl_lines": lines, "exit_code": code}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "samples": samples}, indent=2) + "\n")
    ok = growth < 5.0 and summary["dropped_windows"] == 0 and code == 0
    print("PASS" if ok else "FAIL", "(targets: RSS growth < 5%, 0 dropped windows, exit 0)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
