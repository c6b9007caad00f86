"""The TensorRT build and runtime code paths on fake TensorRT and pycuda modules (tests/fake_tensorrt.py):
the engine cache's key, chunked evaluation and bench, the CUDA context's release order, DLA. The code
under test is the code that runs on the device; only the GPU is missing (issue 13)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import fake_tensorrt
import numpy as np
import pytest
from test_tensorrt import feed, make_bundle, ort_outputs, qdq_model
from typer.testing import CliRunner

from karmma_edge.bundle import Artifact, Manifest, ProfileEntry, sha256_file, write_manifest
from karmma_edge.cli import app
from karmma_edge.edge_runtime.backends.tensorrt import SharedScratch, TensorRTEngine, open_bundle_engines
from karmma_edge.edge_runtime.engine_cache import EngineKey, check_engine_key, sidecar_path
from karmma_edge.errors import KarmmaError
from karmma_edge.quantize.tensorrt_build import build_bundle_engines


def two_profile_bundle(root: Path) -> Path:
    """make_bundle's rgb+audio profile plus an audio-less twin built from another seed."""
    make_bundle(root)
    manifest = Manifest.model_validate_json((root / "manifest.json").read_text())
    (root / "profiles" / "rgb").mkdir()
    model = qdq_model(root / "profiles" / "rgb" / "model.int8.onnx", seed=3)
    art = Artifact(path="profiles/rgb/model.int8.onnx", sha256=sha256_file(model))
    manifest.profiles["rgb"] = ProfileEntry(modalities=["rgb", "audio"], artifacts={"int8": art, "fp32": art})
    write_manifest(root, manifest)
    return root


# --- the engine cache -----------------------------------------------------------------------------


def test_a_plan_cached_for_max_batch_8_is_rebuilt_for_16_not_reused(tmp_path, monkeypatch):
    trt, _ = fake_tensorrt.install(monkeypatch)
    bundle, cache = make_bundle(tmp_path / "bundle"), tmp_path / "cache"

    [first] = build_bundle_engines(bundle, cache_dir=cache, max_batch=8)
    assert not first["cached"] and len(trt.builds) == 1
    assert first["key"]["max_batch"] == 8 and trt.builds[0]["profile"]["rgb"][2][0] == 8
    [again] = build_bundle_engines(bundle, cache_dir=cache, max_batch=8)
    assert again["cached"] and again["engine"] == first["engine"] and len(trt.builds) == 1

    [bigger] = build_bundle_engines(bundle, cache_dir=cache, max_batch=16)
    assert not bigger["cached"] and len(trt.builds) == 2 and bigger["engine"] != first["engine"]
    assert trt.builds[1]["profile"]["rgb"][2][0] == 16 and "--maxShapes=rgb:16x" in bigger["trtexec"]
    assert check_engine_key(Path(bigger["engine"])).max_batch == 16

    [other_workspace] = build_bundle_engines(bundle, cache_dir=cache, max_batch=16, workspace_mb=256)
    assert not other_workspace["cached"] and trt.builds[2]["workspace"] == 256 << 20
    [forced] = build_bundle_engines(bundle, cache_dir=cache, max_batch=16, force=True)
    assert not forced["cached"] and len(trt.builds) == 4

    # The runtime takes this device's plan with the largest batch range.
    engine = open_bundle_engines(bundle, cache_dir=cache)["rgb+audio"]
    assert engine.expected_key.max_batch == 16
    with engine:
        assert (engine.min_batch, engine.max_batch) == (1, 16)
        out = engine.infer(feed(12))
        want = ort_outputs(bundle / "profiles" / "rgb+audio" / "model.int8.onnx", feed(12))
        np.testing.assert_array_equal(out["verb"], want["verb"])


def test_a_plan_whose_key_predates_the_batch_range_is_rebuilt(tmp_path, monkeypatch):
    trt, _ = fake_tensorrt.install(monkeypatch)
    bundle, cache = make_bundle(tmp_path / "bundle"), tmp_path / "cache"
    [rec] = build_bundle_engines(bundle, cache_dir=cache)
    side = sidecar_path(Path(rec["engine"]))
    record = json.loads(side.read_text())
    for name in EngineKey.BUILD_FIELDS:
        del record["key"][name]
    side.write_text(json.dumps(record))
    [again] = build_bundle_engines(bundle, cache_dir=cache)
    assert not again["cached"] and len(trt.builds) == 2


def test_build_cli_takes_max_batch_and_force(tmp_path, monkeypatch):
    trt, _ = fake_tensorrt.install(monkeypatch)
    bundle = make_bundle(tmp_path / "bundle")
    args = ["build", "--bundle", str(bundle), "--backend", "tensorrt", "--engine-cache", str(tmp_path / "c")]
    result = CliRunner().invoke(app, [*args, "--max-batch", "16"], catch_exceptions=False)
    assert result.exit_code == 0 and "built in" in result.output and trt.builds[-1]["profile"]["rgb"][2][0] == 16
    result = CliRunner().invoke(app, [*args, "--max-batch", "16"], catch_exceptions=False)
    assert "(cached)" in result.output and len(trt.builds) == 1
    result = CliRunner().invoke(app, [*args, "--max-batch", "16", "--force"], catch_exceptions=False)
    assert "built in" in result.output and len(trt.builds) == 2


def test_a_timing_cache_tensorrt_refuses_is_replaced(tmp_path, monkeypatch, caplog):
    trt, _ = fake_tensorrt.install(monkeypatch)
    trt.timing_cache_accepts = False          # e.g. written by another TensorRT
    bundle, cache = make_bundle(tmp_path / "bundle"), tmp_path / "cache"
    cache.mkdir()
    [rec] = build_bundle_engines(bundle, cache_dir=cache, max_batch=2)
    [timing] = cache.glob("timing.*.cache")
    timing.write_bytes(b"stale")
    with caplog.at_level(logging.WARNING):
        build_bundle_engines(bundle, cache_dir=cache, max_batch=3)
    assert "does not fit" in caplog.text and timing.read_bytes() == b"timings"


# --- chunked evaluation and bench ------------------------------------------------------------------


def test_bench_on_a_tensorrt_engine_of_max_batch_8_over_24_clips(tiny_bundle, tiny_data_root, tmp_path, monkeypatch):
    fake_tensorrt.install(monkeypatch)
    profiles = ["audio", "rgb+flow+audio"]
    cache = tmp_path / "engines"
    monkeypatch.setenv("KARMMA_EDGE_ENGINE_CACHE", str(cache))
    build_bundle_engines(tiny_bundle, profiles, "int8", max_batch=8)
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, [
        "bench", "--bundle", str(tiny_bundle), "--data", str(tiny_data_root), "--out", str(out),
        "--profiles", ",".join(profiles), "--backends", "tensorrt", "--precisions", "int8", "--batch", "1,8,16",
        "--runs", "3", "--allow-few-runs", "--warmup", "1", "--threads", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    accuracy = [r for r in data["accuracy"] if r["backend"] == "tensorrt"]
    assert {r["profile"] for r in accuracy} == set(profiles)
    assert all(r["clips"] == 24 for r in accuracy)
    batches = {(r["profile"], r["batch"]) for r in data["latency"] if r["backend"] == "tensorrt"}
    assert batches == {(p, b) for p in profiles for b in (1, 8)}
    skipped = " ".join(json.dumps(s) for s in data["skipped"])
    assert "batch 16" in skipped and "1..8" in skipped


# --- one CUDA context, released in order -----------------------------------------------------------


@pytest.mark.parametrize("order", ["first-in-first-out", "last-in-first-out"])
def test_every_device_allocation_is_freed_while_its_context_is_alive(order, tmp_path, monkeypatch):
    _, cuda = fake_tensorrt.install(monkeypatch)
    bundle = two_profile_bundle(tmp_path / "bundle")
    build_bundle_engines(bundle, cache_dir=tmp_path / "cache", max_batch=4)
    engines = list(open_bundle_engines(bundle, cache_dir=tmp_path / "cache").values())
    for engine in engines:
        engine.activate()
    assert cuda.retain_calls == 1              # one retained primary context for every engine and the scratch
    assert all(a.context is cuda.primary for a in cuda.allocations)
    for engine in engines:
        engine.infer(feed(2))
    for engine in engines if order == "first-in-first-out" else reversed(engines):
        engine.deactivate()
    assert cuda.allocations and all(a.freed_alive is True for a in cuda.allocations)
    assert not cuda.primary.alive and cuda.events == ["detach"] and not cuda.stack


def test_a_failed_activation_frees_what_it_took(tmp_path, monkeypatch):
    _, cuda = fake_tensorrt.install(monkeypatch)
    bundle = make_bundle(tmp_path / "bundle")
    [rec] = build_bundle_engines(bundle, cache_dir=tmp_path / "cache")
    engine = TensorRTEngine(Path(rec["engine"]), scratch=SharedScratch())

    def broken(trt):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(engine, "_allocate", broken)
    with pytest.raises(RuntimeError):
        engine.activate()
    assert cuda.allocations and all(a.freed_alive is True for a in cuda.allocations) and not cuda.primary.alive


# --- DLA --------------------------------------------------------------------------------------------


def test_dla_builds_static_shapes_and_reports_layer_placement(tmp_path, monkeypatch):
    trt, _ = fake_tensorrt.install(monkeypatch, dla_cores=2)
    bundle = make_bundle(tmp_path / "bundle")
    [rec] = build_bundle_engines(bundle, cache_dir=tmp_path / "cache", dla_core=1)
    assert trt.builds[0]["profile"]["rgb"] == [[1, 4, 8, 8, 3]] * 3 and trt.builds[0]["dla_core"] == 1
    assert rec["key"]["dla_core"] == 1 and (rec["key"]["min_batch"], rec["key"]["max_batch"]) == (1, 1)
    assert "--useDLACore=1" in rec["trtexec"] and "--maxShapes=rgb:1x" in rec["trtexec"]
    placement = rec["dla_placement"]
    assert placement["GPU"] and "Cast" not in str(placement["DLA"])   # the fake DLA runs no Cast
    assert json.loads(sidecar_path(Path(rec["engine"])).read_text())["dla_placement"] == placement

    # Evaluation feeds a static engine exactly its batch: 1 clip per call on this DLA plan.
    [static] = build_bundle_engines(bundle, cache_dir=tmp_path / "cache", dla_core=0, max_batch=5)
    from karmma_edge.data.arrays import SplitArrays
    from karmma_edge.edge_runtime.measure.evaluate import engine_logits

    inputs = feed(12)
    arrays = SplitArrays(inputs, np.zeros(12, np.int64), np.zeros(12, np.int64), [str(i) for i in range(12)],
                         np.zeros(12, bool))
    with TensorRTEngine(Path(static["engine"])) as engine:
        assert engine.min_batch == engine.max_batch == 5
        verb, noun = engine_logits(engine, arrays)
    want = ort_outputs(bundle / "profiles" / "rgb+audio" / "model.int8.onnx", inputs)
    assert verb.shape == (12, 5) and np.allclose(verb, want["verb"], atol=1e-5)


def test_dla_refusals_name_the_reason(tmp_path, monkeypatch):
    bundle = make_bundle(tmp_path / "bundle")
    args = ["build", "--bundle", str(bundle), "--backend", "tensorrt", "--engine-cache", str(tmp_path / "c")]
    fake_tensorrt.install(monkeypatch, dla_cores=2)
    result = CliRunner().invoke(app, [*args, "--precision", "fp32", "--dla-core", "0"])
    assert isinstance(result.exception, KarmmaError) and "--precision int8" in str(result.exception)
    fake_tensorrt.install(monkeypatch, dla_cores=0)
    with pytest.raises(KarmmaError, match="no DLA .*Orin Nano"):
        build_bundle_engines(bundle, cache_dir=tmp_path / "c", dla_core=0)
    with pytest.raises(KarmmaError, match="up to 4096"):
        build_bundle_engines(bundle, cache_dir=tmp_path / "c", dla_core=0, max_batch=5000)
    fake_tensorrt.install(monkeypatch, version="11.4.0.106", dla_cores=2)
    with pytest.raises(KarmmaError, match="TensorRT 11.4.0.106 has no DLA on Jetson"):
        build_bundle_engines(bundle, cache_dir=tmp_path / "c", dla_core=0)


def test_fp16_on_tensorrt_11_is_refused_with_the_alternatives(tmp_path, monkeypatch):
    trt, _ = fake_tensorrt.install(monkeypatch, version="11.4.0.106")
    bundle = make_bundle(tmp_path / "bundle")
    with pytest.raises(KarmmaError, match="no FP16 builder flag.*--precision int8"):
        build_bundle_engines(bundle, ["rgb+audio"], "fp16", cache_dir=tmp_path / "c")
    assert trt.builds == []
    [rec] = build_bundle_engines(bundle, cache_dir=tmp_path / "c")      # int8 from the Q/DQ graph builds
    assert "--stronglyTyped" not in rec["trtexec"] and "--fp16" not in rec["trtexec"]


def test_print_trtexec_follows_the_installed_tensorrt(tmp_path, monkeypatch):
    bundle = make_bundle(tmp_path / "bundle")
    fake_tensorrt.install(monkeypatch, version="11.4.0.106")
    out = CliRunner().invoke(app, ["build", "--bundle", str(bundle), "--print-trtexec"], catch_exceptions=False).output
    assert "TensorRT 11" in out and "--fp16" not in out and "--stronglyTyped" not in out and "trtexec --onnx" in out
    result = CliRunner().invoke(app, ["build", "--bundle", str(bundle), "--print-trtexec", "--precision", "fp16"])
    assert isinstance(result.exception, KarmmaError) and "no --fp16" in str(result.exception)
    fake_tensorrt.install(monkeypatch, version="10.3.0")
    out = CliRunner().invoke(app, ["build", "--bundle", str(bundle), "--print-trtexec", "--precision", "fp16"],
                             catch_exceptions=False).output
    assert "--fp16" in out
