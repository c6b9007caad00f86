"""report.md: the bench results as a person reads them. Every latency figure stands beside its noise
(min and max around the median, the p90) and the number of runs it took."""

from __future__ import annotations

from pathlib import Path

from karmma_edge.edge_runtime.measure.bench_results import QDQ_GRAPH, BenchResults

ENGINE = {"onnxruntime": "ONNX Runtime", "tensorrt": "TensorRT", "torch-eager": "torch eager",
          QDQ_GRAPH: "Q/DQ graph as written"}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def _opt(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _machine(r: BenchResults) -> list[str]:
    m, v = r.machine, r.machine["versions"]
    jp = m["jetpack"]
    lines = [
        f"- **Machine**: {m['jetson'] or m['cpu']}, {m['cores_physical']} physical / {m['cores_logical']} logical "
        f"cores, {m['memory_gb']} GB RAM ({m['hostname']}, {m['os']})",
        *([f"- **CPU instruction set**: {m['cpu_int8']['isa']}; ONNX Runtime int8 fast path "
           f"{'exact' if m['cpu_int8']['exact'] else 'NOT exact'} ({m['cpu_int8']['reason']})"]
          if m.get("cpu_int8") else []),
        f"- **GPU**: {', '.join(m['gpu']) if m['gpu'] else 'none seen'}"
        + (f" ({m['gpu_note']})" if m["gpu_note"] else "")
        + (f"; power mode {m['power_mode']}" if m["power_mode"] else ""),
        f"- **Versions**: ONNX Runtime {v['onnxruntime']} (providers: {', '.join(m['onnxruntime_providers'])}); "
        f"TensorRT {v['tensorrt']}; JetPack "
        + (f"{jp.get('jetpack') or '?'} (L4T {jp['l4t']})" if jp else "absent (no /etc/nv_tegra_release)")
        + f"; torch {v['torch']}; karmma-edge {v['karmma-edge']}; Python {v['python']}",
        f"- **Load average at start** (1/5/15 min): {', '.join(map(str, m['load_average']))}",
    ]
    return lines


def _noise(r: BenchResults) -> list[str]:
    s = r.settings
    busy = [x.system_cpu_percent for x in r.latency]
    lines = [
        "## Noise",
        "",
        f"Each latency figure is the median of **{s['runs']} timed runs** after {s['warmup']} warm-up runs, "
        f"with the min, p90, p99 and max of the same runs beside it; throughput is batch / median. "
        f"{s['threads']} intra-op threads; ONNX Runtime threads spin between calls (back-to-back timing, "
        "as in a tight loop; the daemon turns spinning off). "
        "Accuracy is one pass over every held-out clip (deterministic); one clip is worth "
        + (f"{100 / r.data['clips']:.2f} points ({r.data['clips']} clips)." if r.data else "- (no data).")
        + " The deployed curve is the mean of "
        + (f"{r.curve.draws} seeded draws per p, with min and max over the draws." if r.curve else "- draws.")
        + (f" Switch latency: the median of {r.switching.repeats} switches per pair." if r.switching else ""),
    ]
    if busy:
        lines += ["", f"While timing, the whole machine was {min(busy):.0f}-{max(busy):.0f}% busy "
                      f"(all cores = 100%; this process included): other jobs share these cores, so read "
                      "differences smaller than the min-max spread as noise."]
    return lines + [""]


def _accuracy(r: BenchResults) -> list[str]:
    if not r.accuracy:
        return []
    kinds = list(dict.fromkeys((a.backend, a.precision) for a in r.accuracy))
    header = ["profile", *(f"{ENGINE[b]} {p.upper()}" for b, p in kinds), "INT8 (Q/DQ graph) - FP32", "clips"]
    rows = []
    for profile in dict.fromkeys(a.profile for a in r.accuracy):
        cells = [profile]
        for b, p in kinds:
            a = r.accuracy_of(b, profile, p)
            cells.append(f"{a.action_top1:.1f} (v {a.verb_top1:.1f}, n {a.noun_top1:.1f})" if a else "-")
        fp = r.accuracy_of("onnxruntime", profile, "fp32")
        q = r.accuracy_of(QDQ_GRAPH, profile, "int8") or r.accuracy_of("onnxruntime", profile, "int8")
        cells.append(f"{q.action_top1 - fp.action_top1:+.1f}" if fp and q else "-")
        cells.append(str(r.data["clips"]))
        rows.append(cells)
    return [f"## Accuracy on `{r.data['split']}` (action top-1 %, verb and noun in brackets)", "",
            f"Split `{r.data['split']}` of `{r.data['root']}`, {r.data['clips']} clips.", "", *_table(header, rows)]


def _split(r: BenchResults) -> list[str]:
    """Which clips the figures come from, beside the split the build chose on."""
    if not r.data:
        return []
    split, gate = r.data["split"], r.data.get("gate_split", "validation")
    if split != gate:
        return [f"Figures on the **{split}** split ({r.data['clips']} clips): the build chose the calibration "
                f"and passed its accuracy gate on `{gate}` (the manifest's figures), so nothing here was chosen "
                f"on these clips.", ""]
    return [f"Figures on the **{split}** split ({r.data['clips']} clips), the split the build's accuracy gate "
            "chose the calibration on: not independent of that choice (`--split test` where the data has one).", ""]


def _latency(r: BenchResults) -> list[str]:
    if not r.latency:
        return ["## Latency", "", "No engine ran: see Skipped.", ""]
    header = ["profile", "engine", "prec.", "batch", "p50 ms", "min-max ms", "p90 ms", "p99 ms", "runs",
              "clips/s", "load ms", "load RSS MB", "peak RSS MB", "CPU %", "machine CPU %", "GPU %", "GPU MB", "GPU W"]
    rows = [[x.profile, ENGINE[x.backend], x.precision.upper(), str(x.batch), f"{x.p50_ms:.3f}",
             f"{x.min_ms:.3f}-{x.max_ms:.3f}", f"{x.p90_ms:.3f}", f"{x.p99_ms:.3f}", str(x.runs),
             f"{x.throughput_clips_s:.0f}", f"{x.load_ms:.0f}", f"{x.load_rss_mb:.1f}", f"{x.peak_rss_mb:.0f}",
             f"{x.cpu_percent:.0f}", f"{x.system_cpu_percent:.0f}", _opt(x.gpu_util_percent, ".0f"),
             _opt(x.gpu_mem_mb, ".0f"), _opt(x.gpu_power_w, ".1f")] for x in r.latency]
    return ["## Latency and resources", "",
            "Peak RSS is the whole bench process (held-out clips and, once loaded, torch included); "
            "load RSS is its growth while the engine loaded. CPU % is this process (100 = one core).", "",
            *_table(header, rows)]


def _curve(r: BenchResults) -> list[str]:
    c = r.curve
    if c is None:
        return []
    lines = ["## Deployed system under missing sensors", "",
             f"For every clip each sensor is dropped with probability p (at least one kept), "
             f"`ProfileSelector` over the bundle's profiles ({', '.join(c.profiles)}) picks the "
             f"{c.engine_precision.upper()} engine (ONNX Runtime) and its prediction is scored, over the same "
             f"`{r.data['split']}` clips as the accuracy table. Mean of {c.draws} "
             f"draws per p (seed {c.seed}, {c.rng} generator"
             + (": the same draws as `karmma-edge eval`" if c.rng == "torch" else ": same rule as `karmma-edge eval`, "
                "other draws (torch absent)") + "), min-max over the draws in brackets.", ""]
    header = ["p", "deployed engines", "torch student", "engines - student", "no engine fits %"]
    rows = []
    for p in c.engine:
        rows.append([p, f"{c.engine[p]:.2f} ({c.engine_min[p]:.1f}-{c.engine_max[p]:.1f})",
                     f"{c.student[p]:.2f} ({c.student_min[p]:.1f}-{c.student_max[p]:.1f})" if c.student else "-",
                     f"{c.engine[p] - c.student[p]:+.2f}" if c.student else "-", f"{c.no_engine[p]:.1f}"])
    lines += _table(header, rows)
    if c.max_gap is not None:
        verdict = "within" if c.max_gap <= 1.5 else "NOT within"
        lines += [f"Largest gap to the torch student: **{c.max_gap:.2f} points**, {verdict} 1.5 points at every p.", ""]
    return lines


def _switching(r: BenchResults) -> list[str]:
    s = r.switching
    if s is None:
        return []
    values = sorted(s.ms.values())
    worst = max(s.ms, key=s.ms.get)
    return ["## Profile switch latency", "",
            "From a live-set change to the first prediction of the newly selected profile, through the daemon's "
            f"selector, window assembly and inference (INT8, ONNX Runtime, spinning off as in `serve`); median of "
            f"{s.repeats} switches per pair. Over {len(values)} pairs: median {values[len(values) // 2]:.2f} ms, "
            f"min {values[0]:.2f} ms, max {values[-1]:.2f} ms ({worst}).", "",
            *_table(["from -> to", "ms"], [[k, f"{v:.2f}"] for k, v in s.ms.items()])]


def skipped_lines(r: BenchResults) -> list[str]:
    """One line per backend and reason: TensorRT's one absence is not repeated per precision."""
    groups: dict[tuple[str, str], list[str]] = {}
    for s in r.skipped:
        where = s.precision.upper() + ("" if s.profile == "*" else f" {s.profile}")
        groups.setdefault((s.backend, s.reason), []).append(where)
    return [f"{ENGINE[backend]} {', '.join(where)}: {reason}" for (backend, reason), where in groups.items()]


def _skipped(r: BenchResults) -> list[str]:
    if not r.skipped and not r.notes:
        return []
    lines = ["## Skipped and not measured", ""]
    lines += [f"- {line}" for line in skipped_lines(r)]
    lines += [f"- {n}" for n in r.notes]
    return lines + [""]


def _comparison(r: BenchResults) -> list[str]:
    c = r.comparison
    if c is None:
        return []
    lines = [f"## Comparison with `{c.old}`", "", "Rules: " + "; ".join(c.rules) + ".", ""]
    if c.regressions:
        lines += _table(["", "what", "old", "new", "limit", "why"],
                        [["**REGRESSION**", g.key, f"{g.old:.3f}", f"{g.new:.3f}", f"{g.limit:.3f}", g.rule]
                         for g in c.regressions])
    else:
        lines += ["No regression beyond the old run's measured noise.", ""]
    if c.unmatched:
        lines += [f"Not measured this time: {', '.join(c.unmatched)}.", ""]
    lines += [f"Caveat: {text}." for text in c.caveats] + ([""] if c.caveats else [])
    return lines


def write_report(out: Path, r: BenchResults, plots: dict[str, str] | str) -> None:
    lines = ["# karmma-edge bench", "",
             f"Bundle `{r.bundle['path']}` (model `{r.bundle['model_id']}`), {r.created}.", "", *_split(r),
             *_machine(r), "", f"Command: `{' '.join(r.command)}`", "", *_noise(r), *_comparison(r),
             *_accuracy(r), *_latency(r), *_curve(r), *_switching(r), *_skipped(r), "## Plots", ""]
    if isinstance(plots, str):
        lines.append(plots)
    else:
        lines += [f"![{title}]({name})\n" for title, name in plots.items()] or ["No data to plot."]
    (Path(out) / "report.md").write_text("\n".join(lines) + "\n")
