"""`karmma-edge build`: a trained run -> a bundle of FP32 and Q/DQ INT8 graphs, one per profile."""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from karmma_edge.atomic import atomic_directory
from karmma_edge.bundle import (Accuracy, Artifact, Calibration, InputEntry, Manifest, ProfileEntry,
                                sha256_file, write_manifest)
from karmma_edge.errors import KarmmaError
from karmma_edge.profiles import expand_profiles

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4

PREPROCESSING = {
    "rgb": "uint8 RGB frames; the graph scales to 0..1 and standardises with rgb_mean/rgb_std",
    "flow": "uint8 EPIC flow (u, v around 128); the graph standardises with flow_mean/flow_std",
    "audio": "mono float32 PCM in -1..1 at sample_rate; the graph computes the log-mel (STFT as Conv1d)",
}


@dataclass
class BuildOptions:
    run: Path
    out: Path
    profiles: str = "all"
    data: Path | None = None
    calibration_method: str | None = None      # None: the gate searches; else only this method
    calibration_size: int = 64
    max_drop: float = 1.0
    threads: int = 2
    seed: int = 0


def _tool_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import onnxsim
    import torch

    import karmma_edge

    return {"karmma_edge": karmma_edge.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "onnxsim": str(onnxsim.__version__),
            "python": platform.python_version()}


def build_bundle(opts: BuildOptions, progress: bool = True) -> Manifest:
    from rich.progress import Progress

    inputs = _load_inputs(opts, progress)
    entries: dict[str, ProfileEntry] = {}
    failures: list[tuple[str, str]] = []
    with atomic_directory(opts.out) as root, Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("building profiles", total=len(inputs.profiles))
        for profile in inputs.profiles:
            bar.update(task, description=f"building {profile}")
            entries[profile], failure = _build_profile(inputs, profile, root, opts)
            if failure:
                failures.append((profile, failure))
            bar.advance(task)
        manifest = _manifest(inputs, entries, opts)
        write_manifest(root, manifest)
        if failures:
            # Raised inside the atomic block: a failed gate leaves the previous bundle in place.
            raise GateFailed("; ".join(f"profile {p}: {why}" for p, why in failures) +
                             ". Raise --max-drop, enlarge --calibration-size, or retrain; nothing was written")
    return manifest


@dataclass
class _Inputs:
    """The trained student and the data every profile is calibrated and gated on."""

    student: object
    info: dict
    profiles: list[str]
    held_out: object
    labels: dict
    calib: object


def _load_inputs(opts: BuildOptions, progress: bool) -> _Inputs:
    from karmma_edge.calibration.sets import draw_calibration_set
    from karmma_edge.data.arrays import load_split
    from karmma_edge.metrics import head_labels
    from karmma_edge.train.runs import load_student

    student, info = load_student(opts.run)          # fails early on a missing or truncated run
    profiles = expand_profiles(opts.profiles, student.modalities)
    spec = student.spec
    data_root = Path(opts.data or info["data"]["root"])
    if not data_root.is_dir():
        raise KarmmaError(f"dataset {data_root} (from {opts.run}/run.json) does not exist; pass --data ROOT")
    fmt = info["data"]["format"]
    # The run's own cache: the splits it decoded for training are not decoded again.
    cache = Path(info["config"].get("cache_dir") or Path(opts.run) / "cache")
    train = load_split(data_root, "train", spec, fmt, student.modalities, cache, progress)
    held_out = load_split(data_root, "validation", spec, fmt, student.modalities, cache, progress)
    labels = head_labels(student.outputs, held_out.verb, held_out.noun)
    calib = draw_calibration_set(train, opts.calibration_size, seed=opts.seed)   # raises on an empty split
    return _Inputs(student, info, profiles, held_out, labels, calib)


def _build_profile(inputs: _Inputs, profile: str, root: Path, opts: BuildOptions) -> tuple[ProfileEntry, str | None]:
    """Export, check parity, quantize through the accuracy gate, check conformance; the manifest entry and,
    when the gate failed, why."""
    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.backends.onnxruntime import QDQ_REFERENCE
    from karmma_edge.edge_runtime.measure.evaluate import engine_logits
    from karmma_edge.quantize.export import export_profile, parity
    from karmma_edge.quantize.gate import Scores, gate_profile
    from karmma_edge.quantize.trt_rules import check_model, require_conformant

    student, held_out = inputs.student, inputs.held_out
    pdir = root / "profiles" / profile
    fp32 = export_profile(student, profile, pdir / "model.fp32.onnx")
    diff = parity(student, profile, fp32)
    if diff > PARITY_TOLERANCE:
        raise KarmmaError(f"profile {profile}: ONNX Runtime FP32 differs from torch by {diff:.2e} "
                          f"(> {PARITY_TOLERANCE}); the export is wrong, please report it")
    modalities = tuple(profile.split("+"))
    int8 = pdir / "model.int8.onnx"

    def evaluate(path: Path) -> Scores:
        # As written, never on this host's int8 kernels: the bundle must not depend on its CPU.
        with create_engine("onnxruntime", path, threads=opts.threads, qdq_reference=True) as engine:
            logits = engine_logits(engine, held_out, student.outputs)
        return Scores.of(dict(zip(student.outputs, logits)), inputs.labels)

    gate = gate_profile(fp32, int8, inputs.calib, held_out, modalities, evaluate, opts.max_drop,
                        opts.calibration_method, evaluation=QDQ_REFERENCE)
    # Raised inside the atomic block: a graph TensorRT would refuse is never written.
    require_conformant(check_model(fp32, graph=f"profile {profile} fp32")
                       + check_model(int8, graph=f"profile {profile} int8"), f"build --out {opts.out}")
    entry = _profile_entry(inputs, profile, root, gate, diff, QDQ_REFERENCE)
    log.info("%s: fp32 %.1f int8 %.1f action top-1", profile, entry.accuracy["fp32"].action_top1,
             entry.accuracy["int8"].action_top1)
    return entry, None if gate.passed else gate.reason


def _profile_entry(inputs: _Inputs, profile: str, root: Path, gate, diff: float, evaluation: str) -> ProfileEntry:
    """The profile's calibration report on disk and its manifest entry: artifacts, calibration, accuracy."""
    calib, clips = inputs.calib, len(inputs.held_out)
    pdir = root / "profiles" / profile
    chosen = gate.chosen
    accuracy = {"fp32": Accuracy(**gate.fp32, clips=clips,
                                 clips_right=chosen.clips_right + chosen.judgement.drop_clips,
                                 evaluation=evaluation),
                "int8": Accuracy(action_top1=chosen.action_top1, verb_top1=chosen.verb_top1,
                                 noun_top1=chosen.noun_top1, clips=clips,
                                 clips_right=chosen.clips_right, evaluation=evaluation)}
    report = pdir / "calibration.json"
    report.write_text(json.dumps({
        "profile": profile, "calibration_set_sha256": calib.sha256, "clips": len(calib),
        "degraded_clips": int(calib.arrays.degraded.sum()), "gate": gate.record(),
        "parity_max_abs_diff": diff,
        "accuracy": {k: v.model_dump() for k, v in accuracy.items()},
    }, indent=2) + "\n")
    files = (("fp32", pdir / "model.fp32.onnx"), ("int8", pdir / "model.int8.onnx"), ("calibration_report", report))
    return ProfileEntry(
        modalities=profile.split("+"),
        artifacts={kind: Artifact(path=str(p.relative_to(root)), sha256=sha256_file(p)) for kind, p in files},
        calibration=Calibration(method=chosen.method, set_sha256=calib.sha256, clips=len(calib),
                                settings={"percentile": chosen.percentile,
                                          "degraded_clips": int(calib.arrays.degraded.sum())}),
        accuracy=accuracy,
        quantization={"chosen": chosen.label, "fp32_nodes": chosen.excluded,
                      "reason": gate.reason, "parity_max_abs_diff": diff,
                      "drop": asdict(chosen.judgement),
                      "format": "Q/DQ, symmetric int8, per-channel weights, per-tensor activations, "
                                "FP32 bias and audio front-end"},
    )


def _manifest(inputs: _Inputs, entries: dict[str, ProfileEntry], opts: BuildOptions) -> Manifest:
    from karmma_edge.train.runs import checkpoint_id

    student, info = inputs.student, inputs.info
    spec = student.spec
    return Manifest(
        model_id=f"{info['model']}:{checkpoint_id(opts.run)}",
        classes=info["classes"], input_spec=spec.to_dict(),
        inputs={m: InputEntry(shape=["B", *spec.input_shape(m)], dtype=spec.input_dtype(m),
                              preprocessing=PREPROCESSING[m]) for m in student.modalities},
        outputs=list(student.outputs), profiles=entries, tools=_tool_versions(),
        flow_encoding=info.get("flow_encoding"),
    )


class GateFailed(KarmmaError):
    """INT8 lost more accuracy than --max-drop allows for some profile, whatever the gate tried."""
