"""`karmma-edge bench`: latency and accuracy per profile, backend and precision, and the deployed
system's accuracy as sensors drop out, written as results.json / results.csv / report.md / PNGs.

One pass per engine: activate it (load time, RSS growth), score it on the held-out split, then time
it at every batch size (warm-up, then `runs` timed calls). The torch eager student, where torch and
`--run` are available, goes through the same path as an `Engine`. No torch at module level.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from karmma_edge.bundle import Bundle, sha256_file
from karmma_edge.data.arrays import SplitArrays
from karmma_edge.edge_runtime.backends import BACKENDS, Engine
from karmma_edge.edge_runtime.measure.bench_results import (QDQ_GRAPH, AccuracyRow, BenchResults, LatencyRow, Skip,
                                                    Switching, load_results, write_results)
from karmma_edge.edge_runtime.cpu_features import int8_support
from karmma_edge.edge_runtime.measure.resource_monitor import ResourceMonitor
from karmma_edge.errors import KarmmaError
from karmma_edge.profiles import all_profiles, expand_profiles
from karmma_edge.targets import PRECISIONS

MIN_RUNS = 100
TORCH = "torch-eager"
ORT_FP16_REASON = ("not offered: ONNX Runtime runs the bundle's graphs as they are and a bundle holds FP32 "
                   "and INT8 graphs only; FP16 is a TensorRT build precision (--backends tensorrt on a GPU)")


@dataclass
class BenchOptions:
    profiles: str = "all"
    backends: tuple[str, ...] = tuple(BACKENDS)
    precisions: tuple[str, ...] = PRECISIONS
    batches: tuple[int, ...] = (1, 4, 8)
    runs: int = MIN_RUNS
    warmup: int = 10
    threads: int = 2
    run: Path | None = None            # training run: torch eager rows and the student's curve
    fmt: str | None = None             # dataset format; default: the run's, else epic100
    split: str | None = None           # held-out split scored; default: the bundle's eval_split
    compare: Path | None = None
    allow_few_runs: bool = False       # tests only: fewer than MIN_RUNS timed runs
    switch_repeats: int = 5
    progress: bool = True
    command: list[str] = field(default_factory=lambda: list(sys.argv))

    def check(self) -> None:
        unknown = [b for b in self.backends if b not in BACKENDS]
        if unknown:
            raise KarmmaError(f"--backends: unknown backend {unknown[0]!r}; valid: {', '.join(BACKENDS)}")
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown:
            raise KarmmaError(f"--precisions: unknown precision {unknown[0]!r}; valid: {', '.join(PRECISIONS)}")
        if not self.batches or any(b < 1 for b in self.batches):
            raise KarmmaError(f"--batch {','.join(map(str, self.batches))}: give batch sizes >= 1, e.g. 1,4,8")
        if self.runs < MIN_RUNS and not self.allow_few_runs:
            raise KarmmaError(f"--runs {self.runs}: latency figures need at least {MIN_RUNS} timed runs to state "
                              f"their noise; use --runs {MIN_RUNS} or more")
        if self.runs < 1 or self.warmup < 0:
            raise KarmmaError("--runs must be >= 1 and --warmup >= 0")


def parse_list(value: str, option: str) -> tuple[str, ...]:
    """A comma-separated option value, e.g. --backends onnxruntime,tensorrt."""
    items = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    if not items:
        raise KarmmaError(f"{option} {value!r} is empty; give a comma-separated list")
    return items


def parse_batches(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in parse_list(value, "--batch"))
    except ValueError:
        raise KarmmaError(f"--batch {value!r} must be whole numbers, e.g. 1,4,8") from None


def _run_info(run: Path) -> dict:
    path = Path(run) / "run.json"
    if not path.is_file():
        raise KarmmaError(f"--run {run}: {path} is missing; point --run at the finished training run the bundle "
                          "was built from")
    return json.loads(path.read_text())


def _check_run_matches(bundle: Bundle, run: Path) -> None:
    """The bundle's model id ends in the first 12 hex digits of its checkpoint's SHA-256."""
    model_id = bundle.manifest.model_id
    ckpt = Path(run) / "model.pt"
    if not ckpt.is_file():
        raise KarmmaError(f"--run {run}: {ckpt} is missing; point --run at a finished training run")
    if not model_id.endswith(":" + sha256_file(ckpt)[:12]):
        raise KarmmaError(f"--run {run} is not the run bundle {bundle.root} was built from (bundle model "
                          f"{model_id}); pass that run, or rebuild the bundle from this one")


def _feed(engine: Engine, held_out: SplitArrays | None, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Real held-out clips (repeated when the split is smaller than the batch), else random sensor data."""
    if held_out is not None:
        index = np.arange(batch) % len(held_out)
        return {t.name: held_out.inputs[t.name][index] for t in engine.inputs}
    out = {}
    for t in engine.inputs:
        shape = (batch, *t.shape[1:])
        out[t.name] = (rng.integers(0, 256, shape, dtype=np.uint8) if t.dtype == np.uint8
                       else (0.1 * rng.standard_normal(shape)).astype(t.dtype))
    return out


def _latency_row(engine: Engine, profile: str, precision: str, batch: int, seconds: np.ndarray, load_ms: float,
                 load_rss_mb: float, usage, warmup: int) -> LatencyRow:
    ms = seconds * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencyRow(backend=engine.backend, profile=profile, precision=precision, batch=batch, runs=len(ms),
                      warmup=warmup, p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99),
                      min_ms=float(ms.min()), max_ms=float(ms.max()), throughput_clips_s=float(batch * 1e3 / p50),
                      load_ms=load_ms, load_rss_mb=load_rss_mb, peak_rss_mb=usage.peak_rss_mb,
                      cpu_percent=usage.cpu_percent, system_cpu_percent=usage.system_cpu_percent,
                      gpu_util_percent=usage.gpu.util_percent, gpu_mem_mb=usage.gpu.mem_mb,
                      gpu_power_w=usage.gpu.power_w)


class _Bench:
    """One bench run: the engines to open, what each measured, and the progress bar over all of it."""

    def __init__(self, bundle: Bundle, held_out: SplitArrays | None, opts: BenchOptions, chosen: list[str],
                 results: BenchResults, bar, task):
        self.bundle, self.held_out, self.opts, self.chosen = bundle, held_out, opts, chosen
        self.results, self.bar, self.task = results, bar, task
        self.monitor = ResourceMonitor()
        self.logits: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.rng = np.random.default_rng(0)

    def step(self, text: str) -> None:
        self.bar.update(self.task, description=text)

    def engines(self, backend: str, precision: str) -> dict[str, Engine] | None:
        """Not-yet-activated engines for the chosen profiles, or None after recording why not."""
        from karmma_edge.edge_runtime.backends import create_engine

        if backend == "onnxruntime":
            if precision == "fp16":
                self.results.skipped.append(Skip(backend, precision, "*", ORT_FP16_REASON))
                return None
            return {p: create_engine(backend, self.bundle.artifact(p, precision), threads=self.opts.threads)
                    for p in self.chosen}
        if backend == "tensorrt":
            from karmma_edge.edge_runtime.backends.tensorrt import open_bundle_engines

            try:
                return dict(open_bundle_engines(self.bundle.root, precision, profiles=self.chosen))
            except KarmmaError as e:  # TensorRT or a GPU absent: skip, say why
                self.results.skipped.append(Skip(backend, precision, "*", str(e)))
                return None
        raise AssertionError(backend)

    def measure(self, engine: Engine, profile: str, precision: str) -> None:
        """Load, score and time one engine; a failure to load is a stated skip, not a crash."""
        self.step(f"load, score {engine.backend} {profile} {precision}")
        rss_before = self.monitor.rss_mb()
        try:
            engine.activate()
        except KarmmaError as e:
            self.results.skipped.append(Skip(engine.backend, precision, profile, str(e)))
            self.bar.advance(self.task, 1 + len(self.opts.batches))
            return
        load_rss = self.monitor.rss_mb() - rss_before
        try:
            if self.held_out is not None:
                self._score(engine, profile, precision)
            self.bar.advance(self.task)
            for batch in self.opts.batches:
                self.step(f"time {engine.backend} {profile} {precision} b{batch}")
                self._time(engine, profile, precision, batch, load_rss)
                self.bar.advance(self.task)
        finally:
            engine.deactivate()

    def _score(self, engine: Engine, profile: str, precision: str) -> None:
        from karmma_edge.edge_runtime.measure.evaluate import engine_logits
        from karmma_edge.metrics import top1

        v, n = engine_logits(engine, self.held_out)
        self.logits[(engine.backend, profile, precision)] = (v, n)
        self.results.accuracy.append(AccuracyRow(engine.backend, profile, precision, clips=len(self.held_out),
                                                 **top1(v, n, self.held_out.verb, self.held_out.noun)))
        if engine.backend == "onnxruntime" and precision == "int8":
            self._score_qdq_graph(profile)

    def _score_qdq_graph(self, profile: str) -> None:
        """The INT8 graph as written: host-independent, unlike the fast path scored beside it."""
        from karmma_edge.edge_runtime.backends import create_engine
        from karmma_edge.edge_runtime.measure.evaluate import engine_logits
        from karmma_edge.metrics import top1

        with create_engine("onnxruntime", self.bundle.artifact(profile, "int8"), threads=self.opts.threads,
                           qdq_reference=True) as engine:
            v, n = engine_logits(engine, self.held_out)
        self.logits[(QDQ_GRAPH, profile, "int8")] = (v, n)
        self.results.accuracy.append(AccuracyRow(QDQ_GRAPH, profile, "int8", clips=len(self.held_out),
                                                 **top1(v, n, self.held_out.verb, self.held_out.noun)))

    def _time(self, engine: Engine, profile: str, precision: str, batch: int, load_rss: float) -> None:
        from karmma_edge.edge_runtime.measure.evaluate import latencies

        feed = _feed(engine, self.held_out, batch, self.rng)
        try:
            with self.monitor.window() as w:
                seconds = latencies(engine, feed, self.opts.runs, self.opts.warmup)
        except KarmmaError as e:  # e.g. a TensorRT plan built for a smaller maximum batch
            self.results.skipped.append(Skip(engine.backend, precision, f"{profile} batch {batch}", str(e)))
            return
        self.results.latency.append(_latency_row(engine, profile, precision, batch, seconds,
                                                 engine.load_time_s * 1e3, load_rss, w.usage, self.opts.warmup))

    def logits_for(self, make, backend: str, profiles: list[str], precision: str):
        """Held-out logits per profile: from the timed pass where it ran, else one untimed pass."""
        from karmma_edge.edge_runtime.measure.evaluate import engine_logits

        out = {}
        for p in profiles:
            if (backend, p, precision) not in self.logits:
                self.step(f"curve logits {backend} {p} {precision}")
                with make(p) as engine:
                    self.logits[(backend, p, precision)] = engine_logits(engine, self.held_out)
            out[p] = self.logits[(backend, p, precision)]
        return out


def run_bench(bundle_dir: Path, data: Path | None, out: Path, opts: BenchOptions | None = None) -> BenchResults:
    """Benchmark a bundle into `out`; returns what was written to results.json."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from karmma_edge.data.arrays import load_split

    opts = opts or BenchOptions()
    opts.check()
    plan = _plan(Path(bundle_dir), data, opts)
    bundle, chosen = plan.bundle, plan.chosen
    old = load_results(opts.compare) if opts.compare else None
    results = _empty_results(plan, opts)
    engine_sets = [(b, p) for b in opts.backends for p in opts.precisions]
    per_engine = 1 + len(opts.batches)
    total = 1 + (len(engine_sets) + plan.torch_ok) * len(chosen) * per_engine + 3
    with Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=not opts.progress) as bar:
        task = bar.add_task("decoding held-out clips", total=total)
        held_out = None
        if plan.data is not None:
            split = opts.split or bundle.manifest.eval_split
            held_out = load_split(plan.data, split, bundle.manifest.spec, plan.fmt, progress=False)
            results.data = {"root": str(plan.data), "split": split, "clips": len(held_out)}
        bar.advance(task)
        bench = _Bench(bundle, held_out, opts, chosen, results, bar, task)
        if bench.monitor.gpu_note:
            results.notes.append(bench.monitor.gpu_note)
        _time_engines(bench, engine_sets, plan.torch_ok)

        bench.step("deployed curve")
        if held_out is not None:
            results.curve = _deployed_curve(bench, plan.torch_ok)
        bar.advance(task)

        bench.step("profile switch latency")
        if len(chosen) > 1:
            results.switching = _switching(bundle, chosen, opts)
        else:
            results.notes.append("one profile benched: no switch latency")
        bar.advance(task)

        bench.step("writing report and plots")
        bench.monitor.close()
        _write(Path(out), results, bundle, old, opts)
        bar.advance(task)
    return results


@dataclass
class _Plan:
    """What a bench run measures, settled before any engine opens."""

    bundle: Bundle
    chosen: list[str]
    data: Path | None
    fmt: str
    torch_ok: bool
    notes: list[str]


def _plan(bundle_dir: Path, data: Path | None, opts: BenchOptions) -> _Plan:
    """The bundle, profiles, held-out data and torch rows a bench run can measure, with notes on what it cannot."""
    bundle = Bundle(bundle_dir)
    chosen = expand_profiles(opts.profiles, bundle.manifest.spec.modalities)
    missing = [p for p in chosen if p not in bundle.profiles]
    if missing:
        raise KarmmaError(f"--profiles: bundle {bundle_dir} has no profile {missing[0]!r}; it has: "
                          f"{', '.join(bundle.profiles)}")
    notes: list[str] = []
    run_info = _run_info(opts.run) if opts.run else None
    if run_info:
        _check_run_matches(bundle, opts.run)
    data = Path(data) if data else Path(run_info["data"]["root"]) if run_info else None
    fmt = opts.fmt or (run_info["data"]["format"] if run_info else "epic100")
    if data is None:
        notes.append("no held-out data (--data): accuracy and the deployed curve were not measured; "
                     "latency ran on random sensor data")
    elif not data.is_dir():
        raise KarmmaError(f"--data {data} does not exist; pass the dataset root the bundle was built from")
    cpu = int8_support()
    if not cpu.exact and "onnxruntime" in opts.backends and "int8" in opts.precisions:
        notes.append(f"this processor's ONNX Runtime int8 fast path is not exact ({cpu.reason}): its INT8 "
                     "accuracy is this host's, not the bundle's; the Q/DQ graph rows are what the manifest "
                     "records and TensorRT computes")
    torch_ok = opts.run is not None and find_spec("torch") is not None
    if opts.run is None:
        notes.append("no --run: no torch eager rows and no student curve (pass the training run to get them)")
    elif not torch_ok:
        notes.append("torch is not installed here: no torch eager rows and no student curve")
    return _Plan(bundle, chosen, data, fmt, torch_ok, notes)


def _empty_results(plan: _Plan, opts: BenchOptions) -> BenchResults:
    from karmma_edge.edge_runtime.measure.machine import describe_machine

    bundle = plan.bundle
    return BenchResults(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), command=opts.command,
        machine=describe_machine(),
        bundle={"path": str(bundle.root), "model_id": bundle.manifest.model_id, "profiles": bundle.profiles},
        data=None, notes=plan.notes,
        settings={"profiles": plan.chosen, "backends": list(opts.backends), "precisions": list(opts.precisions),
                  "batches": list(opts.batches), "runs": opts.runs, "warmup": opts.warmup, "threads": opts.threads,
                  "run": str(opts.run) if opts.run else None, "onnxruntime_spin": True})


def _time_engines(bench: _Bench, engine_sets: list[tuple[str, str]], torch_ok: bool) -> None:
    """Latency and accuracy rows for every backend and precision asked for, then torch eager's."""
    opts, chosen = bench.opts, bench.chosen
    for backend, precision in engine_sets:
        engines = bench.engines(backend, precision)
        if engines is None:
            bench.bar.advance(bench.task, len(chosen) * (1 + len(opts.batches)))
            continue
        for profile, engine in engines.items():
            bench.measure(engine, profile, precision)
    if torch_ok:
        from karmma_edge.edge_runtime.measure.bench_torch import TorchEagerEngine

        for profile in chosen:
            bench.measure(TorchEagerEngine(opts.run, profile, opts.threads), profile, "fp32")


def _deployed_curve(bench: _Bench, torch_ok: bool):
    """The drop-probability curve of the deployed INT8 system, beside the torch student's when torch is here."""
    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.measure.deployed_curve import deployed_curve

    bundle, opts, held_out = bench.bundle, bench.opts, bench.held_out
    spec = bundle.manifest.spec
    # The deployed system holds every profile of the bundle, whichever ones were timed; its INT8
    # graphs as written, as on the device, whatever this host's int8 kernels do.
    engine_logits = bench.logits_for(
        lambda p: create_engine("onnxruntime", bundle.artifact(p, "int8"), threads=opts.threads,
                                qdq_reference=True),
        QDQ_GRAPH, bundle.profiles, "int8")
    student_logits = None
    if torch_ok:
        from karmma_edge.edge_runtime.measure.bench_torch import TorchEagerEngine

        try:
            student_logits = bench.logits_for(lambda p: TorchEagerEngine(opts.run, p, opts.threads),
                                              TORCH, all_profiles(spec.modalities), "fp32")
        except KarmmaError as e:  # the same failure already skipped the torch rows
            bench.results.notes.append(f"no student curve: {e}")
    return deployed_curve(engine_logits, held_out.verb, held_out.noun, tuple(spec.modalities), student_logits)


def _write(out: Path, results: BenchResults, bundle: Bundle, old: BenchResults | None, opts: BenchOptions) -> None:
    """Rows in the bundle's profile order, the comparison with an earlier run, then results, plots and report."""
    from karmma_edge.edge_runtime.measure.bench_compare import compare
    from karmma_edge.edge_runtime.measure.bench_plots import write_plots
    from karmma_edge.edge_runtime.measure.bench_report import write_report

    order = {p: i for i, p in enumerate(bundle.profiles)}
    results.latency.sort(key=lambda r: (order[r.profile], r.backend, r.precision, r.batch))
    results.accuracy.sort(key=lambda r: (order[r.profile], r.backend, r.precision))
    if old is not None:
        results.comparison = compare(old, results, str(opts.compare))
    write_results(out, results)
    plots = write_plots(out, results)
    write_report(out, results, plots)


def _switching(bundle: Bundle, chosen: list[str], opts: BenchOptions) -> Switching:
    """Open the INT8 engines as the daemon does (spin off) and time every switch between them."""
    from karmma_edge.edge_runtime.backends import create_engine
    from karmma_edge.edge_runtime.measure.switching import switch_latencies

    engines = {p: create_engine("onnxruntime", bundle.artifact(p, "int8"), threads=opts.threads, spin=False)
               for p in chosen}
    try:
        for e in engines.values():
            e.activate()
        seconds = switch_latencies(engines, bundle.manifest.spec, bundle.manifest.classes, repeats=opts.switch_repeats)
    finally:
        for e in engines.values():
            e.deactivate()
    return Switching(repeats=opts.switch_repeats, ms={k: v * 1e3 for k, v in seconds.items()})


def render_table(results: BenchResults):
    """Per profile: held-out action top-1 and batch-1 median latency of every backend and precision."""
    from rich.table import Table

    table = Table(title="held-out action top-1 % and batch-1 latency, ms (median)",
                  caption=f"median of {results.settings['runs']} runs; min, max, p90, p99 and batches in report.md")
    table.add_column("profile", no_wrap=True)
    kinds = sorted({(r.backend, r.precision) for r in results.latency},
                   key=lambda c: (c[0] == TORCH, c[0], PRECISIONS.index(c[1])))
    names = [f"{'torch' if b == TORCH else 'ORT' if b == 'onnxruntime' else 'TRT'} {p}" for b, p in kinds]
    acc_kinds, acc_names = list(kinds), list(names)
    if any(a.backend == QDQ_GRAPH for a in results.accuracy):
        acc_kinds.append((QDQ_GRAPH, "int8"))
        acc_names.append("INT8 Q/DQ graph")
    for name in acc_names:
        table.add_column(f"{name} %", justify="right")
    for name in names:
        table.add_column(f"{name} ms", justify="right")
    for profile in dict.fromkeys(r.profile for r in results.latency):
        accs = [results.accuracy_of(b, profile, p) for b, p in acc_kinds]
        lats = [next((r for r in results.latency if r.key == (b, profile, p, 1)), None) for b, p in kinds]
        table.add_row(profile, *(f"{a.action_top1:.1f}" if a else "-" for a in accs),
                      *(f"{r.p50_ms:.2f}" if r else "-" for r in lats))
    return table
