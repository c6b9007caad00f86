"""`karmma-edge demo`: the whole KARMMA chain on the built-in synthetic data, in one directory.

synth -> extractors pre-trained on the pretrain pool -> their tokens, cached -> teacher; the student's
own encoders pre-trained on the same pool -> KARMMA_S distilled from the teacher -> build (every
profile FP32 and Q/DQ INT8, the gate on validation) -> bench on the report split (test), batch 1,
with the deployed missing-modality curve.

The runs are exactly those of `karmma-edge reproduce --preset P --seed 0` (the configs come from
`reproduce.PRESETS`, the layout is reproduce's: OUT/data, OUT/cache, OUT/runs/<method>), so a stage
whose run.json holds its config is reused, an interrupted one resumes from its checkpoint, and a
second `demo --out DIR` redoes nothing expensive.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from karmma_edge.atomic import atomic_write
from karmma_edge.errors import KarmmaError

DEMO_FILE = "demo.json"
SUMMARY_FILE = "summary.md"
SCORES_FILE = "scores.json"
SEED = 0
# --ce-student's run: reproduce's control, trained with CE and modality dropout from the same
# pre-trained encoders as KARMMA_S, so the two columns differ only in the teacher.
CE_STUDENT = "control"


@dataclass
class Stage:
    name: str
    seconds: float                     # wall clock
    # This process's and its finished children's CPU time: on a machine shared with other jobs, the
    # figure that says what the stage costs.
    cpu_seconds: float
    reused: bool


@dataclass
class DemoRow:
    """One profile's line of the demo's table: accuracies in percent action top-1 on the report split."""

    profile: str
    teacher: float
    ce_student: float | None
    fp32: float
    int8: float
    int8_qdq: float
    fp32_ms: float
    int8_ms: float


@dataclass
class DemoSummary:
    preset: str
    split: str
    clips: int
    rows: list[DemoRow]
    chance: float                      # action top-1 of a uniform guess over the action classes
    flops_ratio: float | None          # KARMMA_S / teacher GFLOPs with every modality
    kept_at_half: float                # deployed INT8 system: accuracy at p = 0.5 over p = 0
    stages: list[Stage] = field(default_factory=list)


class _Chain:
    """The stages run so far, each timed, reused or not, printed as it starts."""

    def __init__(self, console: Console):
        self.console, self.start, self.stages = console, time.time(), []

    def say(self, text: str) -> None:
        self.console.print(f"[bold]\\[{time.time() - self.start:5.0f}s][/bold] {text}")

    def run(self, name: str, doing: str, fn, reused: bool = False, reuse_note: str = "", load=None):
        """`fn()`, or when `reused` the finished stage's result as `load()` reads it back (None without)."""
        if reused:
            self.say(f"{name}: reusing {reuse_note}")
            self.stages.append(Stage(name, 0.0, 0.0, True))
            return load() if load else None
        self.say(f"{name}: {doing}")
        t0, cpu0 = time.time(), _cpu_seconds()
        result = fn()
        self.stages.append(Stage(name, round(time.time() - t0, 1), round(_cpu_seconds() - cpu0, 1), False))
        return result


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_configs(preset, out: Path, ce_student: bool = False) -> dict:
    """The demo's training stages, name -> (trainer, config), as `reproduce` builds them for seed 0
    into `out` (same data, cache and seed, so the two commands train, and reuse, the same runs)."""
    from karmma_edge.train.reproduce import stage_configs

    common = {"data": out / "data", "format": preset.format, "seed": SEED, "cache_dir": out / "cache", "threads": None}
    wanted = ("extractors", "student_encoders", "teacher", "karmma_s") + ((CE_STUDENT,) if ce_student else ())
    stages = stage_configs(preset, out / "runs", common)
    return {name: stages[name] for name in wanted}


def run_demo(out: Path, preset: str = "demo", ce_student: bool = False, progress: bool = True) -> DemoSummary:
    """The chain into `out`; returns (and writes to out/demo.json and out/summary.md) its table."""
    from karmma_edge.data import report_split
    from karmma_edge.train.reproduce import get_preset

    console = Console()
    out = Path(out)
    chosen = get_preset(preset)
    if chosen.format != "epic100":
        raise KarmmaError(f"demo --preset {preset}: the demo runs the EPIC-KITCHENS layout; pick an epic100 preset")
    chain = _Chain(console)
    data, runs = out / "data", out / "runs"
    cfgs = run_configs(chosen, out, ce_student)
    chain.run("data", f"synthesizing the {chosen.data} dataset (seed {SEED}) into {data}",
              lambda: _synthesize(data, chosen.data, progress), _synthesized(data, chosen.data), str(data))
    _train(chain, cfgs, runs, progress)
    split = report_split(data, chosen.format)
    bundle, bench = out / "bundle", out / "bench"
    chain.run("build", f"building every profile, FP32 and INT8 (the gate on validation), into {bundle}",
              lambda: _build(runs / "karmma_s", bundle, progress), _built(bundle, runs / "karmma_s"), str(bundle))
    from karmma_edge.bundle import Bundle
    from karmma_edge.edge_runtime.measure.bench_results import load_results

    results = chain.run("bench", f"benchmarking the bundle on the {split} split (batch 1) into {bench}",
                        lambda: _bench(bundle, data, bench, split, progress), _benched(bench, bundle, split),
                        str(bench), load=lambda: load_results(bench / "results.json"))
    scored, key = out / SCORES_FILE, _scores_key(runs, split, ce_student)
    scores = chain.run("scores", f"scoring the teacher{' and the CE student' if ce_student else ''} "
                       f"on the {split} split, counting FLOPs",
                       lambda: _scores(runs, split, ce_student, scored, key, progress), _scored(scored, key),
                       str(scored), load=lambda: json.loads(scored.read_text())["scores"])
    summary = _summary(preset, split, results, scores, Bundle(bundle).manifest.classes, chain.stages)
    text = summary_markdown(summary)
    atomic_write(out / SUMMARY_FILE, text)
    atomic_write(out / DEMO_FILE, json.dumps(asdict(summary), indent=2) + "\n")
    console.print(render_table(summary))
    chain.say(f"done: {out} (the table is in {out / SUMMARY_FILE})")
    return summary


def _synthesized(data: Path, preset: str) -> bool:
    from karmma_edge.data.synth.generate import FORMAT_VERSION, read_marker

    meta = read_marker(data)
    if meta is None:
        return False
    if meta.get("preset") != preset or meta.get("seed") != SEED:
        raise KarmmaError(f"{data} holds the synthetic {meta.get('preset')!r} data, seed {meta.get('seed')}, not "
                          f"{preset!r} seed {SEED}; give demo another --out or delete {data}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise KarmmaError(f"{data} was written by an older data generator (format {meta.get('format_version')}, "
                          f"now {FORMAT_VERSION}); give demo another --out or delete {data}")
    return True


def _synthesize(data: Path, preset: str, progress: bool) -> None:
    from karmma_edge.data import synthesize

    synthesize(data, preset=preset, seed=SEED, progress=progress)


def _train(chain: _Chain, cfgs: dict, runs: Path, progress: bool) -> None:
    from karmma_edge.train.reproduce import finished

    doing = {"extractors": "pre-training the teacher's extractors on the pretrain pool",
             "student_encoders": "pre-training the student's own encoders on the pretrain pool",
             "teacher": "training the teacher on the extractors' cached tokens",
             "karmma_s": "distilling KARMMA_S from the teacher, from those encoders (shared modality dropout)",
             CE_STUDENT: "training the CE student with modality dropout from those encoders (no teacher)"}
    for name, (train, cfg) in cfgs.items():
        run = runs / name
        # Held-out scores of the last epoch only: the demo chooses nothing on the per-epoch history.
        chain.run(name, f"{doing[name]} into {run} ({cfg.epochs} epochs)",
                  lambda: train(cfg, run, progress, every_epoch=False),
                  finished(run, cfg), f"{run} (trained with this config)")


def _built(bundle: Path, run: Path) -> bool:
    """The bundle holds this run's checkpoint (build writes it whole or not at all)."""
    manifest = bundle / "manifest.json"
    from karmma_edge.train.runs import checkpoint_id

    return manifest.is_file() and json.loads(manifest.read_text())["model_id"].endswith(":" + checkpoint_id(run))


def _build(run: Path, bundle: Path, progress: bool) -> None:
    from karmma_edge.quantize.build import BuildOptions, build_bundle

    build_bundle(BuildOptions(run=run, out=bundle), progress)


def _benched(bench: Path, bundle: Path, split: str) -> bool:
    results = bench / "results.json"
    if not results.is_file():
        return False
    old = json.loads(results.read_text())
    model_id = json.loads((bundle / "manifest.json").read_text())["model_id"]
    return old["bundle"]["model_id"] == model_id and (old.get("data") or {}).get("split") == split


def _bench(bundle: Path, data: Path, bench: Path, split: str, progress: bool):
    from karmma_edge.edge_runtime.measure.bench import BenchOptions, run_bench

    # Batch 1: the device's case. ONNX Runtime only: the table compares FP32 with INT8 graphs.
    return run_bench(bundle, data, bench, BenchOptions(batches=(1,), backends=("onnxruntime",), split=split,
                                                       progress=progress))


def _scores_key(runs: Path, split: str, ce_student: bool) -> dict:
    """What the scores depend on: the split and the checkpoints scored."""
    from karmma_edge.train.runs import checkpoint_id

    names = ("teacher", "karmma_s") + ((CE_STUDENT,) if ce_student else ())
    return {"split": split, **{n: checkpoint_id(runs / n) for n in names}}


def _scored(path: Path, key: dict) -> bool:
    return path.is_file() and json.loads(path.read_text())["key"] == key


def _scores(runs: Path, split: str, ce_student: bool, path: Path, key: dict, progress: bool) -> dict:
    """Per profile action top-1 of the teacher (and CE student) on `split`, and the student's share of the
    teacher's FLOPs; also written to `path` with the `key` they hold for."""
    from karmma_edge.inputs import InputSpec
    from karmma_edge.train.cost import student_cost, teacher_cost
    from karmma_edge.train.evaluate import evaluate_run
    from karmma_edge.train.runs import load_student
    from karmma_edge.train.teacher import load_teacher, teacher_sources

    names = ["teacher"] + ([CE_STUDENT] if ce_student else [])
    top1 = {n: {p: s["action_top1"] for p, s in evaluate_run(runs / n, draws=1, progress=progress,
                                                             split=split)["subsets"].items()} for n in names}
    teacher, info = load_teacher(runs / "teacher")
    t = teacher_cost(teacher, teacher_sources(info), InputSpec.from_dict(info["input_spec"]))
    s = student_cost(load_student(runs / "karmma_s")[0])
    full = next(iter(s))
    scores = {"top1": top1, "flops_ratio": None if t[full]["gflops"] is None else s[full]["gflops"] / t[full]["gflops"]}
    atomic_write(path, json.dumps({"key": key, "scores": scores}, indent=2) + "\n")
    return scores


def _summary(preset: str, split: str, results, scores: dict, classes: dict, stages: list[Stage]) -> DemoSummary:
    from karmma_edge.edge_runtime.measure.bench_results import QDQ_GRAPH
    from karmma_edge.metrics import action_names
    from karmma_edge.train.reproduce import relative_drop

    def acc(backend: str, profile: str, precision: str) -> float:
        return results.accuracy_of(backend, profile, precision).action_top1

    def ms(profile: str, precision: str) -> float:
        return next(r.p50_ms for r in results.latency
                    if r.key == ("onnxruntime", profile, precision, 1))

    ce = scores["top1"].get(CE_STUDENT)
    rows = [DemoRow(profile=p, teacher=scores["top1"]["teacher"][p], ce_student=None if ce is None else ce[p],
                    fp32=acc("onnxruntime", p, "fp32"), int8=acc("onnxruntime", p, "int8"),
                    int8_qdq=acc(QDQ_GRAPH, p, "int8"), fp32_ms=ms(p, "fp32"), int8_ms=ms(p, "int8"))
            for p in results.bundle["profiles"]]
    return DemoSummary(preset=preset, split=split, clips=results.data["clips"], rows=rows,
                       chance=100.0 / len(action_names(classes)), flops_ratio=scores["flops_ratio"],
                       kept_at_half=1 - relative_drop(results.curve.engine, "0.5"), stages=stages)


def _columns(summary: DemoSummary) -> list[tuple[str, str]]:
    """(DemoRow field, column heading) of the table, the CE student's only when it was trained."""
    cols = [("profile", "profile"), ("teacher", "teacher %")]
    if any(r.ce_student is not None for r in summary.rows):
        cols.append(("ce_student", "CE w/ δ student %"))
    return cols + [("fp32", "KARMMA_S FP32 %"), ("int8", "ORT INT8 %"), ("int8_qdq", "INT8 Q/DQ graph %"),
                   ("fp32_ms", "FP32 ms"), ("int8_ms", "INT8 ms")]


def _cells(summary: DemoSummary, row: DemoRow) -> list[str]:
    return [v if isinstance(v, str) else f"{v:.2f}" if name.endswith("_ms") else f"{v:.1f}"
            for name, v in ((n, getattr(row, n)) for n, _ in _columns(summary))]


def _notes(summary: DemoSummary) -> list[str]:
    ratio = "n/a" if summary.flops_ratio is None else f"{summary.flops_ratio:.3f}"
    return [f"Action top-1 on the {summary.split} split ({summary.clips} clips); latency: batch-1 median, "
            "ONNX Runtime, 2 threads. \"INT8 Q/DQ graph\" is the INT8 graph as written (what the manifest "
            "records and TensorRT computes); \"ORT INT8\" is this host's int8 kernels.",
            f"Chance (a uniform guess over {100 / summary.chance:.0f} actions): {summary.chance:.1f} %; KARMMA_S's "
            f"weakest profile (INT8 Q/DQ graph) is {min(r.int8_qdq for r in summary.rows) / summary.chance:.1f}x chance.",
            f"KARMMA_S / teacher FLOPs with every modality: {ratio}.",
            f"Deployed INT8 system, each modality dropped with p = 0.5: keeps {100 * summary.kept_at_half:.1f} % "
            "of its all-modality accuracy.",
            "Stage seconds, wall (CPU): " + ", ".join(
                f"{s.name} " + ("reused" if s.reused else f"{s.seconds:.0f} ({s.cpu_seconds:.0f})")
                for s in summary.stages)]


def summary_markdown(summary: DemoSummary) -> str:
    cols = _columns(summary)
    lines = [f"# karmma-edge demo: preset {summary.preset}, seed {SEED}", "",
             "| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols),
             *("| " + " | ".join(_cells(summary, r)) + " |" for r in summary.rows), ""]
    return "\n".join(lines + [f"{n}\n" for n in _notes(summary)])


def render_table(summary: DemoSummary):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"KARMMA on the built-in data: {summary.split} split action top-1, ONNX Runtime batch-1 latency")
    for i, (_, heading) in enumerate(_columns(summary)):
        table.add_column(heading, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for r in summary.rows:
        table.add_row(*_cells(summary, r))
    return Group(table, *(Text(n) for n in _notes(summary)))
