"""`karmma-edge bench` on the tiny bundle: the files and results.json schema, the deployed curve, --compare.

Timing is never asserted (DESIGN 11): only that the figures exist, are consistent and are stated.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import fields
from importlib.util import find_spec
from pathlib import Path

import pytest
from typer.testing import CliRunner

from karmma_edge.cli import app
from karmma_edge.edge_runtime.measure.bench_compare import compare
from karmma_edge.edge_runtime.measure.bench_results import (QDQ_GRAPH, SCHEMA, AccuracyRow, BenchResults, Curve,
                                                    LatencyRow, load_results)
from karmma_edge.edge_runtime.cpu_features import int8_support

PROFILES = "rgb+flow+audio,audio"
FAST = ["--runs", "3", "--allow-few-runs", "--warmup", "1", "--threads", "1"]


def bench(*args: str, exit_code: int = 0) -> str:
    result = CliRunner().invoke(app, ["bench", *args], catch_exceptions=False)
    assert result.exit_code == exit_code, result.output
    return result.output


@pytest.fixture(scope="module")
def run_dir(request):
    """The training run for the torch rows, where torch is installed (the runtime job has none)."""
    return request.getfixturevalue("tiny_run") if find_spec("torch") else None


@pytest.fixture(scope="module")
def bench_out(tiny_bundle, tiny_data_root, run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    bench("--bundle", str(tiny_bundle), "--data", str(tiny_data_root), "--profiles", PROFILES,
          "--batch", "1,2", *FAST, *(["--run", str(run_dir)] if run_dir else []), "--out", str(out))
    return out


def test_bench_writes_files_with_the_documented_schema(bench_out, run_dir):
    for name in ("results.json", "results.csv", "report.md"):
        assert (bench_out / name).is_file(), name
    if find_spec("matplotlib"):
        assert (bench_out / "accuracy_latency.png").stat().st_size > 10_000
        assert (bench_out / "accuracy_vs_p.png").stat().st_size > 10_000

    data = json.loads((bench_out / "results.json").read_text())
    assert data["schema"] == SCHEMA
    assert set(data) == {f.name for f in fields(BenchResults)}
    for key in ("cpu", "cores_logical", "versions", "jetpack", "power_mode", "gpu", "load_average"):
        assert key in data["machine"]
    assert {"onnxruntime", "tensorrt", "torch"} <= set(data["machine"]["versions"])

    engines = {("onnxruntime", "fp32"), ("onnxruntime", "int8")} | ({("torch-eager", "fp32")} if run_dir else set())
    expected = {(b, p, prec, batch) for b, prec in engines for p in PROFILES.split(",") for batch in (1, 2)}
    rows = data["latency"]
    assert {(r["backend"], r["profile"], r["precision"], r["batch"]) for r in rows} == expected
    for r in rows:
        assert set(r) == {f.name for f in fields(LatencyRow)}
        assert r["runs"] == 3 and r["warmup"] == 1
        assert r["min_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["throughput_clips_s"] > 0 and r["load_ms"] > 0 and r["peak_rss_mb"] > 0
        assert r["gpu_util_percent"] is None            # no GPU here: stated, not invented
    # Figures on test by default (the tiny data has one); the build's gate chose on validation.
    assert data["data"]["split"] == "test" and data["data"]["gate_split"] == "validation"
    for a in data["accuracy"]:
        assert set(a) == {f.name for f in fields(AccuracyRow)}
        assert 0 <= a["action_top1"] <= 100 and a["clips"] == data["data"]["clips"]
    assert set(data["curve"]) == {f.name for f in fields(Curve)}
    assert list(data["curve"]["engine"]) == [f"{p / 10:.1f}" for p in range(10)]
    assert set(data["switching"]["ms"]) == {"rgb+flow+audio->audio", "audio->rgb+flow+audio"}

    # Skips are stated with their reason, never a crash: no TensorRT here, no FP16 on ONNX Runtime.
    skipped = {(s["backend"], s["precision"]) for s in data["skipped"]}
    assert ("onnxruntime", "fp16") in skipped
    if not find_spec("tensorrt"):
        assert {("tensorrt", p) for p in ("fp32", "fp16", "int8")} <= skipped

    with open(bench_out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    report = (bench_out / "report.md").read_text()
    for text in ("ONNX Runtime 1.", "TensorRT", "JetPack", "3 timed runs", "min-max ms", "## Deployed system",
                 "not offered", "## Profile switch latency", "Figures on the **test** split",
                 "passed its accuracy gate on `validation`", "## Accuracy on `test`", "same `test` clips"):
        assert text in report, text
    assert load_results(bench_out / "results.json").latency[0].runs == 3


def test_deployed_curve_at_p0_is_the_full_profile_int8_accuracy(bench_out):
    results = load_results(bench_out / "results.json")
    full = results.accuracy_of(QDQ_GRAPH, "rgb+flow+audio", "int8")        # the bundle's INT8, not this CPU's
    assert results.curve.engine["0.0"] == pytest.approx(full.action_top1)
    assert results.curve.engine_min["0.0"] == results.curve.engine_max["0.0"]    # p=0 draws keep everything
    assert set(results.curve.profiles) == set(results.bundle["profiles"])        # the whole bundle is deployed


def test_bench_reports_the_qdq_graph_and_this_hosts_int8_fast_path(bench_out):
    results = load_results(bench_out / "results.json")
    for profile in PROFILES.split(","):
        fast = results.accuracy_of("onnxruntime", profile, "int8")
        graph = results.accuracy_of(QDQ_GRAPH, profile, "int8")
        assert fast is not None and graph is not None
    assert not any(r.backend == QDQ_GRAPH for r in results.latency)          # measured, never timed
    cpu = int8_support()
    assert results.machine["cpu_int8"]["exact"] == cpu.exact
    report = (bench_out / "report.md").read_text()
    assert f"**CPU instruction set**: {cpu.isa}" in report
    assert "Q/DQ graph as written INT8" in report


def test_student_curve_uses_the_draws_of_karmma_edge_eval(bench_out, run_dir):
    if run_dir is None:
        pytest.skip("needs torch and the training run")
    from karmma_edge.train.evaluate import evaluate_run

    results = load_results(bench_out / "results.json")
    assert results.curve.rng == "torch"
    assert results.curve.student == pytest.approx(evaluate_run(run_dir, progress=False)["curve"])
    assert results.curve.student["0.0"] == pytest.approx(
        results.accuracy_of("torch-eager", "rgb+flow+audio", "fp32").action_top1)


def test_compare_marks_a_doctored_regression(bench_out, tiny_bundle, tiny_data_root, tmp_path):
    new = load_results(bench_out / "results.json")
    assert compare(new, new, "same").regressions == []          # a run is within its own noise

    old = json.loads((bench_out / "results.json").read_text())
    row = next(r for r in old["latency"] if r["profile"] == "audio" and r["precision"] == "int8" and r["batch"] == 1)
    row.update(p50_ms=row["min_ms"] / 10, p90_ms=row["min_ms"] / 9, max_ms=row["min_ms"] / 8)   # old run "faster"
    acc = next(a for a in old["accuracy"] if a["profile"] == "audio" and a["precision"] == "int8")
    acc["action_top1"] += 2 * 100 / acc["clips"]                                                  # old run 2 clips better
    doctored = tmp_path / "old" / "results.json"
    doctored.parent.mkdir()
    doctored.write_text(json.dumps(old))

    out = tmp_path / "new"
    printed = bench("--bundle", str(tiny_bundle), "--data", str(tiny_data_root), "--profiles", "audio",
                    "--backends", "onnxruntime", "--precisions", "int8", "--batch", "1", *FAST,
                    "--compare", str(doctored), "--out", str(out), exit_code=1)
    assert "REGRESSION latency onnxruntime audio int8 b1" in printed
    assert "REGRESSION accuracy onnxruntime audio int8" in printed
    report = (out / "report.md").read_text()
    assert "**REGRESSION** | onnxruntime audio int8 b1" in report
    kinds = {(g.kind, g.key) for g in load_results(out / "results.json").comparison.regressions}
    assert kinds == {("latency", "onnxruntime audio int8 b1"), ("accuracy", "onnxruntime audio int8")}


def test_bench_on_validation_gives_the_figures_the_build_gated_on(tiny_bundle, tiny_data_root, tmp_path):
    """--split validation scores the clips the build's gate chose on: the Q/DQ graph rows are the
    manifest's figures, on any processor, and the report says they are not independent of that choice."""
    from karmma_edge.bundle import Bundle

    out = tmp_path / "validation"
    printed = bench("--bundle", str(tiny_bundle), "--data", str(tiny_data_root), "--split", "validation",
                    "--profiles", PROFILES, "--backends", "onnxruntime", "--precisions", "int8", "--batch", "1",
                    *FAST, "--out", str(out))
    assert "validation action top-1" in printed
    results = load_results(out / "results.json")
    assert results.data["split"] == "validation"
    manifest = Bundle(tiny_bundle).manifest
    assert manifest.eval_split == "validation"
    for profile in PROFILES.split(","):
        graph = results.accuracy_of(QDQ_GRAPH, profile, "int8")
        assert graph.action_top1 == pytest.approx(manifest.profiles[profile].accuracy["int8"].action_top1)
    assert "the split the build's accuracy gate chose the calibration on" in (out / "report.md").read_text()


def test_compare_across_splits_compares_latency_only(bench_out):
    new = load_results(bench_out / "results.json")
    old = json.loads((bench_out / "results.json").read_text())
    old["data"]["split"] = "validation"
    for a in old["accuracy"]:
        a["action_top1"] = 100.0                        # far above anything the test split scored
    old["curve"]["engine"] = {p: 100.0 for p in old["curve"]["engine"]}
    comparison = compare(BenchResults.from_dict(old), new, "old")
    assert not [g for g in comparison.regressions if g.kind in ("accuracy", "curve")]
    assert any("scored the validation split and this one test" in c for c in comparison.caveats)


def test_fewer_than_100_runs_needs_the_test_option(tiny_bundle, tmp_path):
    r = subprocess.run([sys.executable, "-m", "karmma_edge.cli", "bench", "--bundle", str(tiny_bundle),
                        "--runs", "10", "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "--runs 10" in r.stderr and "at least 100" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_compare_with_a_file_that_is_not_bench_results_names_it(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text('{"rows": []}')
    from karmma_edge.errors import KarmmaError

    with pytest.raises(KarmmaError, match="--compare .*results.json"):
        load_results(bad)
