"""The INT8 accuracy gate: search calibration settings, then leave the most sensitive nodes in FP32,
until a profile's INT8 graph is no worse than FP32 on the held-out split, judged at the split's
resolution (`judge_drop`).

Accuracy comes from `Scores` that the caller measures; the build measures an INT8 graph as its Q/DQ
semantics (`QDQ_REFERENCE`), never with this host's int8 kernels, so the bundle does not depend on
the processor it was built on.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from karmma_edge.calibration.sets import CalibrationSet
from karmma_edge.data.arrays import SplitArrays
from karmma_edge.quantize.int8 import QUANTIZED_OPS, preprocess, quantize_int8

log = logging.getLogger(__name__)

# Tried in order; the first that passes wins (cheapest and most standard first).
CALIBRATIONS: tuple[tuple[str, float | None], ...] = (
    ("minmax", None), ("percentile", 99.999), ("percentile", 99.99), ("entropy", None),
)
EXCLUDE_STEPS = (1, 2, 4, 8, 16)
# A drop beyond the tolerance fails only when it is also significant on the paired predictions.
ALPHA = 0.05


@dataclass
class Scores:
    """Held-out top-1 (percent) and which clips the action was right on, in split order."""
    top1: dict[str, float]                 # action_top1, and verb_top1 / noun_top1 where the model has them
    action_correct: np.ndarray             # bool per clip

    @classmethod
    def of(cls, logits: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> "Scores":
        from karmma_edge.metrics import action_correct

        correct = action_correct(logits, labels)
        top1 = {"action_top1": float(100.0 * np.mean(correct))}
        for head in ("verb", "noun"):
            if head in logits:
                top1[f"{head}_top1"] = float(100.0 * np.mean(np.asarray(logits[head]).argmax(axis=1)
                                                             == np.asarray(labels[head])))
        return cls(top1, correct)


@dataclass
class DropJudgement:
    """INT8 against FP32 on the same clips: the drop in points and clips, and whether it fails."""
    clips: int
    drop_clips: int                        # clips right in FP32 minus clips right in INT8
    drop_points: float
    lost: int                              # right in FP32, wrong in INT8
    gained: int                            # wrong in FP32, right in INT8
    p_value: float                         # one-sided exact McNemar: P(>= lost of lost+gained | no real drop)
    tolerance_points: float                # max(--max-drop, one clip's worth)
    passed: bool


def mcnemar_one_sided(lost: int, gained: int) -> float:
    """P(X >= lost), X ~ Binomial(lost + gained, 1/2): the exact McNemar test for a drop. Hand-written
    because it is one sum and scipy is not a dependency."""
    n = lost + gained
    return sum(math.comb(n, k) for k in range(lost, n + 1)) / 2 ** n if n else 1.0


def judge_drop(fp32: np.ndarray, int8: np.ndarray, max_drop: float) -> DropJudgement:
    """A drop fails only if it is over max(`max_drop` points, one clip) AND significant (p < ALPHA) on
    the paired predictions: on a 24-clip split one clip is 4.2 points, and noise is not a regression."""
    fp32, int8 = np.asarray(fp32, bool), np.asarray(int8, bool)
    n = len(fp32)
    drop_clips = int(fp32.sum()) - int(int8.sum())
    lost, gained = int((fp32 & ~int8).sum()), int((~fp32 & int8).sum())
    drop_points = 100.0 * drop_clips / n
    tolerance = max(max_drop, 100.0 / n)
    p = mcnemar_one_sided(lost, gained)
    return DropJudgement(n, drop_clips, drop_points, lost, gained, p, tolerance,
                         passed=drop_points <= tolerance + 1e-9 or p >= ALPHA)


@dataclass
class Trial:
    method: str
    percentile: float | None
    excluded: list[str] = field(default_factory=list)
    action_top1: float = 0.0
    verb_top1: float | None = None         # None for a single-label (action) model
    noun_top1: float | None = None
    clips_right: int = 0
    judgement: DropJudgement | None = None

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
    evaluation: str = ""                   # how INT8 accuracy was measured (QDQ_REFERENCE)

    def record(self) -> dict:
        return {"passed": self.passed, "max_drop_points": self.max_drop, "alpha": ALPHA, "reason": self.reason,
                "int8_evaluation": self.evaluation,
                "chosen": asdict(self.chosen), "trials": [asdict(t) | {"label": t.label} for t in self.trials],
                "most_sensitive_nodes": [{"node": n, "relative_error": e} for n, e in self.sensitivity[:16]]}


def node_sensitivity(fp32: Path, int8: Path, feeds: list[dict[str, np.ndarray]]) -> list[tuple[str, float]]:
    """Rank quantized nodes by the relative error of their output, INT8 graph against FP32.

    Each quantized node's output tensor keeps its name through quantization (the Q/DQ pair hangs off
    it), so the same tensor is read from both graphs: ||int8 - fp32||^2 / ||fp32||^2 over the feeds.
    Both run as written (no fusion), so the ranking does not depend on this host's int8 kernels.
    """
    import onnxruntime as ort

    from karmma_edge.edge_runtime.backends.onnxruntime import session_options

    qmodel = onnx.load(int8)
    quantized_inputs = {n.output[0] for n in qmodel.graph.node if n.op_type == "DequantizeLinear"}
    targets = [n for n in qmodel.graph.node if n.op_type in QUANTIZED_OPS
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
            sess = ort.InferenceSession(str(probe), session_options(qdq_reference=True),
                                        providers=["CPUExecutionProvider"])
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
                 evaluate: Callable[[Path], Scores], max_drop: float = 1.0,
                 method: str | None = None, evaluation: str = "") -> GateResult:
    """Write the first INT8 graph that `judge_drop` passes to `out` (else the best found) and say why.

    `evaluate` scores a graph on `held_out`; `evaluation` says how, for the record."""
    base = evaluate(fp32)
    calibrations = [(method, 99.999 if method == "percentile" else None)] if method else list(CALIBRATIONS)
    trials: list[Trial] = []
    best: tuple[Trial, Path] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        pre = preprocess(fp32, Path(tmp) / "pre.onnx")

        def attempt(m: str, pct: float | None, excluded: list[str]) -> bool:
            nonlocal best
            path = Path(tmp) / f"trial{len(trials)}.onnx"
            quantize_int8(pre, path, calib, modalities, method=m, percentile=pct or 99.999,
                          exclude=tuple(excluded), preprocessed=True)
            scores = evaluate(path)
            judgement = judge_drop(base.action_correct, scores.action_correct, max_drop)
            trial = Trial(m, pct, list(excluded), **scores.top1, clips_right=int(scores.action_correct.sum()),
                          judgement=judgement)
            trials.append(trial)
            log.info("gate %s: %s -> %.1f (fp32 %.1f, p %.3f)", out.parent.name, trial.label, trial.action_top1,
                     base.top1["action_top1"], judgement.p_value)
            if best is None or (judgement.passed, trial.action_top1) > (best[0].judgement.passed,
                                                                        best[0].action_top1):
                best = (trial, path)
            return judgement.passed

        sensitivity: list[tuple[str, float]] = []
        if not any(attempt(m, pct, []) for m, pct in calibrations):
            best_cal = best[0]
            feeds = list(calib.feeds(modalities, batch=8))[:4]
            sensitivity = node_sensitivity(pre, best[1], feeds)
            for k in EXCLUDE_STEPS:
                if k > len(sensitivity) or attempt(best_cal.method, best_cal.percentile,
                                                   [n for n, _ in sensitivity[:k]]):
                    break
        chosen, path = best
        out.write_bytes(path.read_bytes())
    return GateResult(chosen.judgement.passed, chosen, base.top1, max_drop, trials, sensitivity,
                      _reason(chosen, trials[0], base.top1["action_top1"]), evaluation)


def _reason(chosen: Trial, first: Trial, fp32_top1: float) -> str:
    j = chosen.judgement
    said = (f"{chosen.label}: {chosen.action_top1:.1f} vs FP32 {fp32_top1:.1f} ({j.drop_clips} of {j.clips} "
            f"clips fewer right: {j.lost} lost, {j.gained} gained, p {j.p_value:.3f})")
    if not j.passed:
        return (f"no setting within {j.tolerance_points:.1f} points (max(--max-drop, one clip)) of FP32 or "
                f"within noise; best {said}")
    if chosen is not first:
        return f"{first.label} lost {fp32_top1 - first.action_top1:.1f} points; {said}"
    return said
