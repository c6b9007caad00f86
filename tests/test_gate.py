"""The accuracy gate searches calibration and FP32 fallbacks, and records why it chose what it chose."""

from pathlib import Path

import pytest

from karmma_edge.calibration.sets import draw_calibration_set
from karmma_edge.data.arrays import load_split
from karmma_edge.edge_runtime.backends import create_engine
from karmma_edge.edge_runtime.evaluate import engine_logits
from karmma_edge.metrics import top1
from karmma_edge.quantize.gate import CALIBRATIONS, gate_profile


@pytest.fixture(scope="module")
def setup(tiny_run, tiny_bundle, tiny_dataset):
    from karmma_edge.train.runs import load_student

    student, info = load_student(tiny_run)
    held_out = load_split(tiny_dataset, "validation", student.spec, modalities=student.modalities, progress=False)
    train = load_split(tiny_dataset, "train", student.spec, modalities=student.modalities, progress=False)
    calib = draw_calibration_set(train, 8)

    def evaluate(path: Path):
        with create_engine("onnxruntime", path, threads=2) as engine:
            return top1(*engine_logits(engine, held_out), held_out.verb, held_out.noun)

    return tiny_bundle / "profiles" / "audio" / "model.fp32.onnx", calib, held_out, evaluate


def test_an_easy_gate_takes_the_first_setting(setup, tmp_path):
    fp32, calib, held_out, evaluate = setup
    result = gate_profile(fp32, tmp_path / "q.onnx", calib, held_out, ("audio",), evaluate, max_drop=100.0)
    assert result.passed and len(result.trials) == 1
    assert result.chosen.method == CALIBRATIONS[0][0]
    assert (tmp_path / "q.onnx").is_file()


def test_an_impossible_gate_tries_everything_and_reports_the_best(setup, tmp_path):
    fp32, calib, held_out, evaluate = setup
    result = gate_profile(fp32, tmp_path / "q.onnx", calib, held_out, ("audio",), evaluate, max_drop=-101.0)
    assert not result.passed
    methods = {(t.method, t.percentile) for t in result.trials if not t.excluded}
    assert methods == set(CALIBRATIONS)
    assert result.sensitivity, "no per-node sensitivity ranking"
    errors = [e for _, e in result.sensitivity]
    assert errors == sorted(errors, reverse=True)
    assert any(t.excluded for t in result.trials), "never tried leaving sensitive nodes in FP32"
    assert result.chosen.action_top1 == max(t.action_top1 for t in result.trials)
    assert "best" in result.reason
