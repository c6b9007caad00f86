"""The bench plots (matplotlib, Agg): accuracy against batch-1 latency per profile and precision, and
the deployed system's accuracy against the drop probability p. matplotlib comes with the `train`
extra; a device's base install may lack it, and then the report says the plots were skipped."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from karmma_edge.edge_runtime.measure.bench_results import BenchResults

MARKERS = {("onnxruntime", "fp32"): "o", ("onnxruntime", "int8"): "s", ("torch-eager", "fp32"): "^",
           ("tensorrt", "fp32"): "P", ("tensorrt", "fp16"): "D", ("tensorrt", "int8"): "X"}
LABELS = {"onnxruntime": "ONNX Runtime", "torch-eager": "torch eager", "tensorrt": "TensorRT"}


def write_plots(out: Path, results: BenchResults) -> dict[str, str] | str:
    """{title: file name} of the plots written, or why none were."""
    if find_spec("matplotlib") is None:
        return "plots skipped: matplotlib is not installed (pip install 'karmma-edge[train]' or matplotlib)"
    import matplotlib

    matplotlib.use("Agg")
    plots = {}
    if results.accuracy and results.latency:
        plots["Accuracy against batch-1 latency"] = _accuracy_latency(Path(out) / "accuracy_latency.png", results)
    if results.curve is not None:
        plots["Accuracy against the drop probability p"] = _curve(Path(out) / "accuracy_vs_p.png", results)
    return plots


def _accuracy_latency(path: Path, results: BenchResults) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    profiles = list(dict.fromkeys(r.profile for r in results.latency))
    colours = {p: plt.get_cmap("tab10")(i) for i, p in enumerate(profiles)}
    kinds = sorted({(r.backend, r.precision) for r in results.latency}, key=lambda k: list(MARKERS).index(k))
    fig, ax = plt.subplots(figsize=(10, 6), layout="constrained")
    for r in results.latency:
        acc = results.accuracy_of(r.backend, r.profile, r.precision)
        if r.batch != 1 or acc is None:
            continue
        ax.errorbar(r.p50_ms, acc.action_top1, xerr=[[r.p50_ms - r.min_ms], [r.p90_ms - r.p50_ms]],
                    fmt=MARKERS[(r.backend, r.precision)], color=colours[r.profile], markersize=9,
                    markeredgecolor="black", markeredgewidth=0.6, elinewidth=1, capsize=3,
                    ecolor=(*colours[r.profile][:3], 0.45))   # faint bars keep overlapping markers readable
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency, ms (median; bar from min to p90; log scale)")
    ax.set_ylabel("held-out action top-1, %")
    ax.set_title(f"Accuracy against latency per profile and precision ({results.machine['cpu']}, "
                 f"{results.settings['threads']} threads, {results.settings['runs']} runs per point)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    by_profile = [Line2D([], [], color=colours[p], marker="o", linestyle="", markersize=9, label=p) for p in profiles]
    by_kind = [Line2D([], [], color="grey", marker=MARKERS[k], linestyle="", markersize=9, markeredgecolor="black",
                      label=f"{LABELS[k[0]]} {k[1].upper()}") for k in kinds]
    first = ax.legend(handles=by_profile, title="profile", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.add_artist(first)
    ax.legend(handles=by_kind, title="engine", loc="lower left", bbox_to_anchor=(1.01, 0))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _curve(path: Path, results: BenchResults) -> str:
    import matplotlib.pyplot as plt

    c = results.curve
    keys = [f"{p:.1f}" for p in c.p]
    rows = 2 if c.student is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 4.5 + 2.5 * (rows - 1)), sharex=True, layout="constrained",
                             height_ratios=[3, 1.4][:rows], squeeze=False)
    ax = axes[0, 0]
    series = [(c.engine, c.engine_min, c.engine_max, "tab:blue", dict(marker="o", linestyle="-"),
               f"deployed: {c.engine_precision.upper()} engines picked by ProfileSelector (ONNX Runtime)")]
    if c.student is not None:
        # Dashed with open markers: the two curves often coincide and must both stay visible.
        series.append((c.student, c.student_min, c.student_max, "tab:orange",
                       dict(marker="^", linestyle="--", markerfacecolor="none", markersize=9),
                       "torch student on the same draws"))
    for mean, lo, hi, colour, style, label in series:
        ax.plot(c.p, [mean[k] for k in keys], color=colour, label=label, **style)
        ax.fill_between(c.p, [lo[k] for k in keys], [hi[k] for k in keys], color=colour, alpha=0.12)
    ax.set_ylabel("held-out action top-1, %")
    ax.set_title(f"Deployed system under missing sensors ({results.data['clips']} clips)\n"
                 f"mean of {c.draws} draws per p; shaded: min-max over the draws", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    if c.student is not None:
        gap_ax = axes[1, 0]
        gap_ax.axhspan(-1.5, 1.5, color="tab:green", alpha=0.12, label="within 1.5 points")
        gap_ax.axhline(0, color="grey", linewidth=0.8)
        gap_ax.plot(c.p, [c.engine[k] - c.student[k] for k in keys], marker="o", color="tab:blue",
                    label=f"engines - student (largest |gap| {c.max_gap:.2f})")
        limit = max(2.0, c.max_gap * 1.2)
        gap_ax.set_ylim(-limit, limit)
        gap_ax.set_ylabel("gap, points")
        gap_ax.grid(True, alpha=0.3)
        gap_ax.legend(loc="upper left", fontsize=8, ncols=2)
    axes[-1, 0].set_xticks(c.p)
    axes[-1, 0].set_xlabel("probability p that each sensor is dropped (at least one kept)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
