"""`karmma-edge demo`: the KARMMA chain on the smoke preset, its table, and a rerun that reuses every stage."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import karmma_cli

pytest.importorskip("torch", reason="the demo trains (the `train` extra)")

TRAINED = ("extractors", "student_encoders", "teacher", "karmma_s", "control")


def test_demo_trains_teacher_and_distilled_student_then_reuses_every_stage(tmp_path):
    from karmma_edge.demo import run_demo
    from karmma_edge.profiles import all_profiles
    from karmma_edge.train.reproduce import PRESETS

    first = run_demo(tmp_path, preset="smoke", ce_student=True, progress=False)
    assert [s.name for s in first.stages] == ["data", *TRAINED, "build", "bench", "scores"]
    assert not any(s.reused for s in first.stages)
    assert first.split == "test"
    assert [r.profile for r in first.rows] == all_profiles(("rgb", "flow", "audio"))
    for row in first.rows:
        for value in (row.teacher, row.ce_student, row.fp32, row.int8, row.int8_qdq):
            assert 0.0 <= value <= 100.0
        assert row.fp32_ms > 0 and row.int8_ms > 0
    assert 0 < first.flops_ratio < 1
    # The runs are reproduce's for seed 0, so `reproduce --preset smoke --out DIR` would reuse them.
    teacher = json.loads((tmp_path / "runs" / "teacher" / "run.json").read_text())
    assert {k: teacher["config"][k] for k in PRESETS["smoke"].teacher} == PRESETS["smoke"].teacher
    assert json.loads((tmp_path / "bench" / "results.json").read_text())["data"]["split"] == "test"
    # The CE column and KARMMA_S start from the same pre-trained encoders; only the teacher differs.
    ce, distilled = (json.loads((tmp_path / "runs" / n / "run.json").read_text())["config"] for n in ("control", "karmma_s"))
    assert distilled["init_extractors"] == str(tmp_path / "runs" / "student_encoders") and distilled["teacher"]
    assert {**ce, "teacher": distilled["teacher"]} == distilled
    # Extractors, teacher tokens, students and build read the clips at one spec: each split is decoded
    # once, into the chain's cache (the build used to decode train and validation again into its run's).
    decoded = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir() if p.name != "tokens")
    assert decoded == ["pretrain", "test", "train", "validation"]
    assert not any((tmp_path / "runs" / name / "cache").exists() for name in TRAINED)

    header = (tmp_path / "summary.md").read_text().splitlines()[2]
    assert "teacher %" in header and "CE w/ δ student %" in header and "KARMMA_S FP32 %" in header
    outputs = [tmp_path / "runs" / name / "run.json" for name in TRAINED]
    outputs += [tmp_path / "bundle" / "manifest.json", tmp_path / "bench" / "results.json", tmp_path / "scores.json"]
    before = {p: p.stat().st_mtime_ns for p in outputs}

    again = run_demo(tmp_path, preset="smoke", ce_student=True, progress=False)
    assert all(s.reused for s in again.stages)
    assert {p: p.stat().st_mtime_ns for p in outputs} == before
    assert again.rows == first.rows


def test_demo_refuses_another_presets_data(tiny_dataset, tmp_path):
    """The tiny data under --out is not the demo preset's: one message naming the fix, nothing trained."""
    shutil.copytree(tiny_dataset, tmp_path / "data")
    result = karmma_cli("demo", "--out", str(tmp_path), "--preset", "demo")
    assert result.returncode == 2, result.stderr
    assert "'tiny'" in result.stderr and "another --out" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_demo_refuses_data_of_an_older_generator(tiny_dataset, tmp_path):
    from karmma_edge.data.synth.generate import MARKER

    shutil.copytree(tiny_dataset, tmp_path / "data")
    marker = tmp_path / "data" / MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "format_version": 0}))
    result = karmma_cli("demo", "--out", str(tmp_path), "--preset", "smoke")
    assert result.returncode == 2, result.stderr
    assert "older data generator" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
