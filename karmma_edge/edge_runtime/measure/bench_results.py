"""What `karmma-edge bench` measured, as plain data, and its files `results.json` / `results.csv`.

results.json (`schema` = "karmma-edge-bench/1"; times in milliseconds, accuracy in percent top-1):

    schema        "karmma-edge-bench/1"
    created       ISO 8601 time the run started
    command       argv of the run
    machine       see `machine.py`: cpu, cpu_int8 (instruction set, fast path exact?), cores, gpu, power_mode, versions, jetpack, load_average
    bundle        {path, model_id, profiles: [every profile in the bundle]}
    data          {root, split, clips, gate_split} or null when no held-out data was given: `split` is
                  the one scored (--split; test where the data has one), `gate_split` the one the
                  build's accuracy gate chose the calibration on (the manifest's eval_split)
    settings      {profiles, backends, precisions, batches, runs, warmup, threads, run}
    latency       [LatencyRow]: one per backend x profile x precision x batch that ran
                  backend "onnxruntime" | "tensorrt" | "torch-eager"; p50/p90/p99/min/max_ms over
                  `runs` timed calls after `warmup` untimed ones; throughput_clips_s = batch / p50;
                  load_ms (engine activation), load_rss_mb (RSS growth on activation);
                  peak_rss_mb (whole process, sampled), cpu_percent (this process, 100 = one core),
                  system_cpu_percent (all processes, 100 = every core busy: other jobs' noise);
                  gpu_util_percent, gpu_mem_mb, gpu_power_w: NVML or tegrastats, else null
    accuracy      [AccuracyRow]: held-out top-1 per backend x profile x precision; backend "qdq-graph"
                  is the INT8 graph run as written (host-independent), "onnxruntime" int8 this host's
                  int8 kernels
    curve         Curve or null: the deployed system's accuracy against the drop probability p
                  {p, draws, seed, rng, profiles (the selector's choices), engine_precision,
                   engine: {"0.0": top1, ...}, engine_min, engine_max (over draws),
                   student, student_min, student_max (null without torch and --run),
                   max_gap (max |engine - student| over p), no_engine (share of clips whose live set
                   no benched profile fits, per p)}
    switching     {repeats, ms: {"from->to": median ms}} or null: live-set change to the first
                  prediction of the newly selected profile (INT8, ONNX Runtime, spin off as in serve)
    skipped       [Skip]: {backend, precision, profile (or "*"), reason}
    notes         [str]: what could not be measured here and why
    comparison    Comparison or null (`--compare`): {old, rules, regressions: [Regression], unmatched,
                  caveats}
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from karmma_edge.errors import KarmmaError
from karmma_edge.file_formats import read_json

SCHEMA = "karmma-edge-bench/1"
# The backend of accuracy rows measured on the INT8 graph's own Q/DQ semantics (what the manifest records
# and TensorRT computes), beside the "onnxruntime" rows of this host's int8 fast path; never timed.
QDQ_GRAPH = "qdq-graph"


@dataclass
class LatencyRow:
    backend: str
    profile: str
    precision: str
    batch: int
    runs: int
    warmup: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    throughput_clips_s: float
    load_ms: float
    load_rss_mb: float
    peak_rss_mb: float
    cpu_percent: float
    system_cpu_percent: float
    gpu_util_percent: float | None = None
    gpu_mem_mb: float | None = None
    gpu_power_w: float | None = None

    @property
    def key(self) -> tuple[str, str, str, int]:
        return self.backend, self.profile, self.precision, self.batch


@dataclass
class AccuracyRow:
    backend: str
    profile: str
    precision: str
    action_top1: float
    verb_top1: float
    noun_top1: float
    clips: int

    @property
    def key(self) -> tuple[str, str, str]:
        return self.backend, self.profile, self.precision


@dataclass
class Curve:
    p: list[float]
    draws: int
    seed: int
    rng: str                          # "torch": the exact draws of `karmma-edge eval`; "numpy": same rule
    profiles: list[str]
    engine_precision: str
    engine: dict[str, float]
    engine_min: dict[str, float]
    engine_max: dict[str, float]
    no_engine: dict[str, float]
    student: dict[str, float] | None = None
    student_min: dict[str, float] | None = None
    student_max: dict[str, float] | None = None
    max_gap: float | None = None


@dataclass
class Switching:
    repeats: int
    ms: dict[str, float]


@dataclass
class Skip:
    backend: str
    precision: str
    profile: str
    reason: str


@dataclass
class Regression:
    kind: str                         # "latency" | "accuracy" | "curve"
    key: str                          # e.g. "onnxruntime rgb int8 b1"
    old: float
    new: float
    limit: float                      # the value `new` crossed
    rule: str


@dataclass
class Comparison:
    old: str
    rules: list[str]
    regressions: list[Regression]
    unmatched: list[str]              # rows of the old run with no counterpart now
    caveats: list[str] = field(default_factory=list)   # why latency flags may be other jobs' load


@dataclass
class BenchResults:
    created: str
    command: list[str]
    machine: dict
    bundle: dict
    data: dict | None
    settings: dict
    latency: list[LatencyRow] = field(default_factory=list)
    accuracy: list[AccuracyRow] = field(default_factory=list)
    curve: Curve | None = None
    switching: Switching | None = None
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    schema: str = SCHEMA

    def accuracy_of(self, backend: str, profile: str, precision: str) -> AccuracyRow | None:
        return next((a for a in self.accuracy if a.key == (backend, profile, precision)), None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BenchResults":
        comparison = d.get("comparison")
        if comparison is not None:
            comparison = Comparison(**{**comparison, "regressions": [Regression(**r) for r in comparison["regressions"]]})
        return cls(**{
            **{f.name: d[f.name] for f in fields(cls) if f.name in d},
            "latency": [LatencyRow(**r) for r in d["latency"]],
            "accuracy": [AccuracyRow(**r) for r in d["accuracy"]],
            "curve": Curve(**d["curve"]) if d.get("curve") else None,
            "switching": Switching(**d["switching"]) if d.get("switching") else None,
            "skipped": [Skip(**s) for s in d.get("skipped", [])],
            "comparison": comparison,
        })


def load_results(path: Path, option: str = "--compare") -> BenchResults:
    """A results.json written by `bench`; a user error names the option and the file."""
    path = Path(path)
    data = read_json(path, "point it at the results.json of an earlier `karmma-edge bench`", KarmmaError, label=option)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise KarmmaError(f"{option} {path} is not a {SCHEMA} file (schema {data.get('schema') if isinstance(data, dict) else None!r}); "
                          "rerun `karmma-edge bench` with this version to make one")
    try:
        return BenchResults.from_dict(data)
    except (KeyError, TypeError) as e:
        raise KarmmaError(f"{option} {path} lacks or mangles a field ({e}); rerun `karmma-edge bench` to make a new one") from None


def write_results(out: Path, results: BenchResults) -> None:
    """results.json (everything) and results.csv (one line per latency row, with its accuracy)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results.to_dict(), indent=2) + "\n")
    columns = [f.name for f in fields(LatencyRow)] + ["action_top1", "verb_top1", "noun_top1", "clips"]
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in results.latency:
            acc = results.accuracy_of(row.backend, row.profile, row.precision)
            writer.writerow({**asdict(row), **({k: v for k, v in asdict(acc).items()
                                                if k in columns} if acc else {})})
