"""`karmma-edge device-check`, all of it but the GPU: the report, the comparison, the trtexec parse and
the power-mode and clock probes, on fake TensorRT/pycuda and fake Jetson tools (issue 13)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import fake_tensorrt
import numpy as np
from typer.testing import CliRunner

from karmma_edge.cli import app
from karmma_edge.edge_runtime.measure.device_check import agreement, parse_trtexec, sys_clocks

# What trtexec 10 prints at the end of a run (its performance summary, abridged).
TRTEXEC_SUMMARY = """\
[11/29/2026-10:00:00] [I] === Performance summary ===
[11/29/2026-10:00:00] [I] Throughput: 1412.83 qps
[11/29/2026-10:00:00] [I] Latency: min = 0.69458 ms, max = 1.2793 ms, mean = 0.705035 ms, median = 0.702637 ms, percentile(90%) = 0.710449 ms, percentile(95%) = 0.714355 ms, percentile(99%) = 0.739258 ms
[11/29/2026-10:00:00] [I] Enqueue Time: min = 0.0112305 ms, max = 0.0595703 ms, mean = 0.0125 ms, median = 0.0119629 ms, percentile(90%) = 0.0133057 ms, percentile(95%) = 0.0141602 ms, percentile(99%) = 0.0205078 ms
[11/29/2026-10:00:00] [I] H2D Latency: min = 0.0131836 ms, max = 0.0327148 ms, mean = 0.0138 ms, median = 0.0136719 ms, percentile(90%) = 0.0141602 ms, percentile(95%) = 0.0144043 ms, percentile(99%) = 0.0166016 ms
[11/29/2026-10:00:00] [I] GPU Compute Time: min = 0.673828 ms, max = 1.25977 ms, mean = 0.684418 ms, median = 0.682007 ms, percentile(90%) = 0.689087 ms, percentile(95%) = 0.693115 ms, percentile(99%) = 0.717773 ms
[11/29/2026-10:00:00] [I] D2H Latency: min = 0.00341797 ms, max = 0.0117188 ms, mean = 0.0045 ms, median = 0.00439453 ms, percentile(90%) = 0.00488281 ms, percentile(95%) = 0.00537109 ms, percentile(99%) = 0.00634766 ms
"""


def test_parse_trtexec_reads_throughput_latency_and_gpu_time():
    parsed = parse_trtexec(TRTEXEC_SUMMARY)
    assert parsed["throughput_qps"] == 1412.83
    assert parsed["latency_ms"]["median"] == 0.702637 and parsed["latency_ms"]["p99"] == 0.739258
    assert parsed["gpu_compute_ms"]["median"] == 0.682007 and parsed["gpu_compute_ms"]["min"] == 0.673828
    assert parse_trtexec("&&&& FAILED TensorRT.trtexec") == {}


def test_agreement_counts_top1_matches_and_the_largest_difference():
    verb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.9], [0.2, 0.1]])
    noun = np.array([[0.0, 2.0], [3.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    other_verb = verb.copy()
    other_verb[2] = [0.9, 1.0]                 # flips the top-1 of one clip
    result = agreement((verb, noun), (other_verb, noun - 0.25))
    assert result == {"verb_top1_agreement": 0.75, "noun_top1_agreement": 1.0, "max_abs_logit_diff": 0.25}


def test_sys_clocks_reads_what_is_readable(tmp_path):
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "cur_freq").write_text("1300500000\n")
    (tmp_path / "bad").write_text("n/a\n")
    clocks = sys_clocks({"gpu": str(tmp_path / "gpu" / "cur_freq"), "bad": str(tmp_path / "bad"),
                         "absent": str(tmp_path / "nope" / "*")})
    assert clocks == {"gpu": {str(tmp_path / "gpu" / "cur_freq"): 1300500000}, "bad": None, "absent": None}


def _tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_device_check_writes_one_report(tiny_bundle, tiny_data_root, tmp_path, monkeypatch):
    fake_tensorrt.install(monkeypatch)
    tools = tmp_path / "bin"
    tools.mkdir()
    _tool(tools, "nvpmodel", "echo 'NV Power Mode: MAXN'\necho 0\n")
    _tool(tools, "jetson_clocks", "echo 'GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=1300500000'\n")
    summary = tmp_path / "summary.txt"
    summary.write_text(TRTEXEC_SUMMARY)
    _tool(tools, "trtexec", f'echo "args: $*" >> {tmp_path / "trtexec.log"}\ncat {summary}\n')
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [
        "device-check", "--bundle", str(tiny_bundle), "--data", str(tiny_data_root), "--out", str(out),
        "--clips", "10", "--runs", "3", "--engine-cache", str(tmp_path / "engines")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["conformance"] == "7 graphs conform" and report["tensorrt"] == "10.3.0"
    assert report["split"] == "test"            # the clips the build's gate (validation) never saw
    assert report["power_and_clocks_before"]["nvpmodel"]["stdout"].startswith("NV Power Mode: MAXN")
    assert "CurrentFreq=1300500000" in report["power_and_clocks_after"]["jetson_clocks"]["stdout"]
    assert set(report["profiles"]) == {"rgb", "flow", "audio", "rgb+flow", "rgb+audio", "flow+audio",
                                       "rgb+flow+audio"}
    for profile, entry in report["profiles"].items():
        assert entry["clips"] == 10
        assert 0.0 <= entry["verb_top1_agreement"] <= 1.0 and 0.0 <= entry["noun_top1_agreement"] <= 1.0
        assert np.isfinite(entry["max_abs_logit_diff"])
        assert entry["end_to_end_ms"]["batch"] == 1 and entry["end_to_end_ms"]["tensorrt"]["runs"] == 3
        assert entry["trtexec"]["gpu_compute_ms"]["median"] == 0.682007
        assert f"--loadEngine={entry['engine']}" in entry["trtexec"]["command"]
    calls = (tmp_path / "trtexec.log").read_text().splitlines()
    assert len(calls) == 7 and any("--shapes=rgb:1x" in c and ",audio:1x" in c for c in calls)
    markdown = (out / "report.md").read_text()
    assert "Power mode: NV Power Mode: MAXN" in markdown and "| rgb+flow+audio | 10 |" in markdown
    assert "clips from the test split" in markdown
