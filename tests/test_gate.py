"""The accuracy gate: searches calibration and FP32 fallbacks, judges a drop at the split's resolution,
records why it chose what it chose, and refuses a graph that is clearly worse, on any processor."""

from pathlib import Path

import numpy as np
import onnx
import pytest

from karmma_edge.calibration.sets import draw_calibration_set
from karmma_edge.data.arrays import SplitArrays, load_split
from karmma_edge.edge_runtime.backends import create_engine
from karmma_edge.edge_runtime.measure.evaluate import engine_logits
from karmma_edge.quantize import gate
from karmma_edge.quantize.gate import CALIBRATIONS, Scores, gate_profile, judge_drop, mcnemar_one_sided


def negate_outputs(path: Path) -> None:
    """Doctor a graph to be clearly worse: every logit negated, so its top-1 is FP32's bottom-1."""
    model = onnx.load(path)
    for out in model.graph.output:
        inner = out.name + "_before_doctoring"
        for node in model.graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
        model.graph.node.append(onnx.helper.make_node("Neg", [inner], [out.name]))
    onnx.save(model, path)


def relabel(arrays: SplitArrays, verb_logits: np.ndarray, noun_logits: np.ndarray) -> SplitArrays:
    """The same clips labelled with a model's own predictions: that model scores 100 % on them."""
    return SplitArrays(arrays.inputs, verb_logits.argmax(1), noun_logits.argmax(1), arrays.ids, arrays.degraded)


@pytest.fixture(scope="module")
def setup(tiny_run, tiny_bundle, tiny_dataset):
    from karmma_edge.train.runs import load_student

    student, info = load_student(tiny_run)
    held_out = load_split(tiny_dataset, "validation", student.spec, modalities=student.modalities, progress=False)
    train = load_split(tiny_dataset, "train", student.spec, modalities=student.modalities, progress=False)
    calib = draw_calibration_set(train, 8)
    fp32 = tiny_bundle / "profiles" / "audio" / "model.fp32.onnx"
    return fp32, calib, held_out


def scorer(held_out: SplitArrays):
    def evaluate(path: Path) -> Scores:
        with create_engine("onnxruntime", path, threads=2, qdq_reference=True) as engine:
            verb, noun = engine_logits(engine, held_out)
        return Scores.of({"verb": verb, "noun": noun}, {"verb": held_out.verb, "noun": held_out.noun})
    return evaluate


def test_mcnemar_is_the_exact_binomial_tail():
    assert mcnemar_one_sided(0, 0) == 1.0
    assert mcnemar_one_sided(5, 0) == pytest.approx(1 / 32)
    assert mcnemar_one_sided(3, 1) == pytest.approx(5 / 16)
    assert mcnemar_one_sided(0, 4) == 1.0


def test_a_drop_is_judged_at_the_resolution_of_the_split():
    right = np.ones(24, bool)
    one_clip = right.copy()
    one_clip[0] = False
    j = judge_drop(right, one_clip, max_drop=1.0)
    assert j.passed and j.drop_clips == 1 and j.tolerance_points == pytest.approx(100 / 24)
    # Two clips (8.3 points) over the one-clip tolerance, but 3 lost / 1 gained is noise (p 0.31).
    fp32 = np.zeros(24, bool)
    fp32[:3] = True
    int8 = np.zeros(24, bool)
    int8[3] = True
    j = judge_drop(fp32, int8, max_drop=1.0)
    assert j.drop_clips == 2 and j.lost == 3 and j.gained == 1 and j.passed
    # Five clips lost, none gained: over the tolerance and significant (p 1/32).
    fp32[:5] = True
    j = judge_drop(fp32, np.zeros(24, bool), max_drop=1.0)
    assert not j.passed and j.p_value == pytest.approx(1 / 32)
    # On a large split one clip is small: --max-drop sets the tolerance.
    big = np.ones(1000, bool)
    worse = big.copy()
    worse[:30] = False
    j = judge_drop(big, worse, max_drop=1.0)
    assert j.tolerance_points == 1.0 and not j.passed


def test_an_easy_gate_takes_the_first_setting(setup, tmp_path):
    fp32, calib, held_out = setup
    result = gate_profile(fp32, tmp_path / "q.onnx", calib, held_out, ("audio",), scorer(held_out), max_drop=100.0)
    assert result.passed and len(result.trials) == 1
    assert result.chosen.method == CALIBRATIONS[0][0]
    assert (tmp_path / "q.onnx").is_file()
    assert result.chosen.judgement.clips == len(held_out)


def test_a_clearly_worse_graph_is_refused_after_trying_everything(setup, tmp_path, monkeypatch):
    fp32, calib, held_out = setup
    with create_engine("onnxruntime", fp32) as engine:
        held_out = relabel(held_out, *engine_logits(engine, held_out))     # FP32: every clip right
    real = gate.quantize_int8

    def doctored(pre, out, *args, **kwargs):
        real(pre, out, *args, **kwargs)
        negate_outputs(out)

    monkeypatch.setattr(gate, "quantize_int8", doctored)
    result = gate_profile(fp32, tmp_path / "q.onnx", calib, held_out, ("audio",), scorer(held_out), max_drop=1.0)
    assert not result.passed
    assert result.fp32["action_top1"] == pytest.approx(100.0)
    methods = {(t.method, t.percentile) for t in result.trials if not t.excluded}
    assert methods == set(CALIBRATIONS)
    assert result.sensitivity, "no per-node sensitivity ranking"
    errors = [e for _, e in result.sensitivity]
    assert errors == sorted(errors, reverse=True)
    assert any(t.excluded for t in result.trials), "never tried leaving sensitive nodes in FP32"
    assert result.chosen.action_top1 == max(t.action_top1 for t in result.trials)
    assert result.chosen.judgement.p_value < gate.ALPHA
    assert "best" in result.reason
