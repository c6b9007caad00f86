"""The INT8 accuracy gate: search calibration settings, then leave the most sensitive nodes in FP32,
until a profile's INT8 action top-1 on the held-out split is within `max_drop` points of FP32."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from karmma_edge.calibration.sets import CalibrationSet
from karmma_edge.data.arrays import SplitArrays
from karmma_edge.quantize.int8 import preprocess, quantize_int8

log = logging.getLogger(__name__)

# Tried in order; the first that passes wins (cheapest and most standard first).
CALIBRATIONS: tuple[tuple[str, float | None], ...] = (
    ("minmax", None), ("percentile", 99.999), ("percentile", 99.99), ("entropy", None),
)
EXCLUDE_STEPS = (1, 2, 4, 8, 16)


@dataclass
class Trial:
    method: str
    percentile: float | None
    excluded: list[str] = field(default_factory=list)
    action_top1: float = 0.0
    verb_top1: float = 0.0
    noun_top1: float = 0.0

    @property
    def label(self) -> str:
        cal = self.method + (f"@{self.percentile}" if self.percentile else "")
        return cal + (f" +{len(self.excluded)} FP32 nodes" if self.excluded else "")


@dataclass
class GateResult:
    passed: bool
    chosen: Trial
    fp32: dict[str, float]
    max_drop: float
    trials: list[Trial]
    sensitivity: list[tuple[str, float]]
    reason: str

    def record(self) -> dict:
        return {"passed": self.passed, "max_drop_points": self.max_drop, "reason": self.reason,
                "chosen": asdict(self.chosen), "trials": [asdict(t) | {"label": t.label} for t in self.trials],
                "most_sensitive_nodes": [{"node": n, "relative_error": e} for n, e in self.sensitivity[:16]]}


def node_sensitivity(fp32: Path, int8: Path, feeds: list[dict[str, np.ndarray]]) -> list[tuple[str, float]]:
    """Rank quantized nodes by the relative error of their output, INT8 graph against FP32.

    Each quantized node's output tensor keeps its name through quantization (the Q/DQ pair hangs off
    it), so the same tensor is read from both graphs: ||int8 - fp32||^2 / ||fp32||^2 over the feeds.
    """
    import onnxruntime as ort

    qmodel = onnx.load(int8)
    quantized_inputs = {n.output[0] for n in qmodel.graph.node if n.op_type == "DequantizeLinear"}
    targets = [n for n in qmodel.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")
               and any(i in quantized_inputs for i in n.input)]
    names = {n.output[0]: n.name for n in targets}
    errors: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for tag, path in (("fp32", fp32), ("int8", int8)):
            model = onnx.load(path)
            known = {o.name for o in model.graph.output}
            for tensor in names:
                if tensor not in known:
                    model.graph.output.append(onnx.ValueInfoProto(name=tensor))
            probe = Path(tmp) / f"{tag}.onnx"
            onnx.save(model, probe)
            sess = ort.InferenceSession(str(probe), providers=["CPUExecutionProvider"])
            available = [t for t in names if t in {o.name for o in sess.get_outputs()}]
            outs[tag] = [dict(zip(available, sess.run(available, feed))) for feed in feeds]
        for ref, got in zip(outs["fp32"], outs["int8"]):
            for tensor, value in ref.items():
                if tensor in got:
                    denom = float(np.sum(value.astype(np.float64) ** 2)) or 1e-12
                    errors.setdefault(names[tensor], []).append(
                        float(np.sum((got[tensor].astype(np.float64) - value) ** 2)) / denom)
    ranked = sorted(((n, float(np.mean(e))) for n, e in errors.items()), key=lambda x: -x[1])
    return ranked


def gate_profile(fp32: Path, out: Path, calib: CalibrationSet, held_out: SplitArrays, modalities: tuple[str, ...],
                 evaluate: Callable[[Path], dict[str, float]], max_drop: float = 1.0,
                 method: str | None = None) -> GateResult:
    """Write the first INT8 graph within `max_drop` of FP32 to `out` (else the best found) and say why."""
    base = evaluate(fp32)
    floor = base["action_top1"] - max_drop
    calibrations = [(method, 99.999 if method == "percentile" else None)] if method else list(CALIBRATIONS)
    trials: list[Trial] = []
    best: tuple[Trial, Path] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        pre = preprocess(fp32, Path(tmp) / "pre.onnx")

        def attempt(m: str, pct: float | None, excluded: list[str]) -> Trial:
            nonlocal best
            path = Path(tmp) / f"trial{len(trials)}.onnx"
            quantize_int8(pre, path, calib, modalities, method=m, percentile=pct or 99.999,
                          exclude=tuple(excluded), preprocessed=True)
            trial = Trial(m, pct, list(excluded), **evaluate(path))
            trials.append(trial)
            log.info("gate %s: %s -> %.1f (fp32 %.1f)", out.parent.name, trial.label, trial.action_top1,
                     base["action_top1"])
            if best is None or trial.action_top1 > best[0].action_top1:
                best = (trial, path)
            return trial

        sensitivity: list[tuple[str, float]] = []
        for m, pct in calibrations:
            if attempt(m, pct, []).action_top1 >= floor:
                break
        else:
            best_cal = max(trials, key=lambda t: t.action_top1)
            feeds = list(calib.feeds(modalities, batch=8))[:4]
            sensitivity = node_sensitivity(pre, best[1], feeds)
            for k in EXCLUDE_STEPS:
                if k > len(sensitivity):
                    break
                if attempt(best_cal.method, best_cal.percentile, [n for n, _ in sensitivity[:k]]).action_top1 >= floor:
                    break
        chosen, path = best
        passed = chosen.action_top1 >= floor
        out.write_bytes(path.read_bytes())
    first = trials[0]
    if passed and chosen is first:
        reason = f"{chosen.label} is within {max_drop} points of FP32 ({chosen.action_top1:.1f} vs {base['action_top1']:.1f})"
    elif passed:
        reason = (f"{first.label} lost {base['action_top1'] - first.action_top1:.1f} points; {chosen.label} is "
                  f"within {max_drop} ({chosen.action_top1:.1f} vs {base['action_top1']:.1f})")
    else:
        reason = (f"no setting within {max_drop} points of FP32 {base['action_top1']:.1f}; best {chosen.label} "
                  f"at {chosen.action_top1:.1f}")
    return GateResult(passed, chosen, base, max_drop, trials, sensitivity, reason)
