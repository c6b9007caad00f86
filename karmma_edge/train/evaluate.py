"""`karmma-edge eval`: accuracy on every subset of modalities and under random missing modalities, on
the test split where the data has one (`--split`; training chose on validation).

Every subset gets top-1, top-5 and mean class accuracy (action, and verb and noun where the dataset
has them). The curve drops each modality independently with probability p (at least one kept), per
clip, averaged over a fixed number of seeded draws. A model's prediction for a clip depends only on
that clip and its subset (evaluation mode), so each clip takes the logits of its drawn subset from the
per-subset pass; the test of learned tokens vs. dropped masks shows the two are the same thing.
`write_report` adds the all-modalities per-class accuracy (CSV) and confusion matrix (PNG).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from karmma_edge.drop_curve import DRAWS, P_VALUES, draw_seed
from karmma_edge.metrics import action_labels, action_names, action_ranks, action_top1, per_class_rows, scores
from karmma_edge.profiles import all_profiles, parse_profile, profile_name
from karmma_edge.train.fit import draw_present

# (clip index, present modalities) -> logits of each label head, in the model's `outputs` order
Forward = Callable[[np.ndarray, tuple[str, ...]], tuple[torch.Tensor, ...]]


@torch.no_grad()
def subset_logits(forward: Forward, n: int, modalities: tuple[str, ...], outputs: tuple[str, ...],
                  batch_size: int = 64) -> dict[str, dict[str, np.ndarray]]:
    """profile -> head -> logits [n, classes]."""
    out = {}
    for profile in all_profiles(modalities):
        mods = parse_profile(profile, modalities)
        parts = [forward(np.arange(start, min(start + batch_size, n)), mods) for start in range(0, n, batch_size)]
        out[profile] = {h: np.concatenate([p[i].cpu().numpy() for p in parts]) for i, h in enumerate(outputs)}
    return out


def curve(logits: dict, labels: dict[str, np.ndarray], modalities: tuple[str, ...],
          draws: int = DRAWS, seed: int = 0) -> dict[str, float]:
    """Action top-1 against the drop probability p, mean over `draws` seeded draws per p."""
    n = len(next(iter(labels.values())))
    heads = tuple(next(iter(logits.values())))
    result = {}
    for i, p in enumerate(P_VALUES):
        accs = []
        for d in range(draws):
            gen = torch.Generator().manual_seed(draw_seed(seed, i, d))
            present = draw_present(n, len(modalities), p, gen).numpy()
            names = [profile_name([m for m, keep in zip(modalities, row) if keep]) for row in present]
            drawn = {h: np.stack([logits[name][h][k] for k, name in enumerate(names)]) for h in heads}
            accs.append(action_top1(drawn, labels))
        result[f"{p:.1f}"] = float(np.mean(accs))
    return result


def evaluate_forward(forward: Forward, labels: dict[str, np.ndarray], modalities: tuple[str, ...],
                     outputs: tuple[str, ...], draws: int = DRAWS, seed: int = 0) -> dict:
    """`logits` (profile -> head -> array) is returned too, for `write_report`; drop it before JSON."""
    n = len(next(iter(labels.values())))
    logits = subset_logits(forward, n, modalities, outputs)
    return {"subsets": {p: scores(z, labels) for p, z in logits.items()},
            "curve": curve(logits, labels, modalities, draws, seed), "logits": logits}


def evaluate_run(run_dir: Path, draws: int = DRAWS, seed: int = 0, progress: bool = True,
                 report_dir: Path | None = None, split: str | None = None) -> dict:
    """Held-out evaluation of a student or teacher run on `split` of its dataset: by default the
    split figures are reported on (`data.report_split`: test where the data has one, else validation).

    `report_dir`: also write per_class.csv and confusion.png there (all modalities present).
    """
    from karmma_edge.data import held_out_split
    from karmma_edge.errors import KarmmaError
    from karmma_edge.inputs import InputSpec
    from karmma_edge.metrics import head_labels, label_heads
    from karmma_edge.train.runs import read_run_info

    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    root, fmt = Path(info["data"]["root"]), info["data"]["format"]
    split = held_out_split(root, fmt, split)
    if info["kind"] == "teacher":
        from karmma_edge.train.teacher import labels as split_labels
        from karmma_edge.train.teacher import load_teacher, teacher_sources
        from karmma_edge.train.tokens import split_tokens

        teacher, info = load_teacher(run_dir)
        spec = InputSpec.from_dict(info["input_spec"])
        tokens = split_tokens(teacher_sources(info), root, split, fmt, spec, Path(info["cache_dir"]), progress)
        _, _, labels = split_labels(root, split, fmt, spec)

        def forward(index, mods):
            return teacher({m: torch.from_numpy(np.array(tokens[m][index])) for m in mods})

        model = teacher
    elif info["kind"] == "student":
        from karmma_edge.data.arrays import load_split
        from karmma_edge.train.fit import batch_inputs
        from karmma_edge.train.runs import load_student

        student, info = load_student(run_dir)
        cache = Path(info["config"].get("cache_dir") or run_dir / "cache")
        held_out = load_split(root, split, student.spec, fmt, cache_dir=cache, progress=progress,
                              description=f"decoding {split} clips")
        labels = head_labels(label_heads(info["classes"]), held_out.verb, held_out.noun)

        def forward(index, mods):
            return student(batch_inputs(held_out, index, mods))

        model = student
    else:
        raise KarmmaError(f"{run_dir} is a {info['kind']} run; eval takes a student or teacher run")
    result = evaluate_forward(forward, labels, tuple(model.modalities), tuple(model.outputs), draws, seed)
    logits = result.pop("logits")
    if report_dir is not None:
        write_report(logits[profile_name(model.modalities)], labels, info["classes"], Path(report_dir))
    return {"run": str(run_dir), "method": info.get("method", info["kind"]), "split": split,
            "clips": len(next(iter(labels.values()))), "draws": draws, **result}


def write_report(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray], classes: dict[str, list[str]],
                 out: Path) -> tuple[Path, Path]:
    """per_class.csv (every action class of the split: clips, top-1, top-5) and confusion.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    names = action_names(classes)
    rows = per_class_rows(logits, labels, names)
    csv_path, png_path = out / "per_class.csv", out / "confusion.png"
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["class_id", "name", "clips", "top1", "top5"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    # Rows: the true classes present in the split; columns: the same classes, plus "other" for a
    # prediction outside them (EPIC has 29,100 possible actions, a split holds a few thousand).
    present = [r["class_id"] for r in rows]
    col = {c: i for i, c in enumerate(present)}
    target, pred = action_labels(logits, labels), action_ranks(logits, 1)[:, 0]
    matrix = np.zeros((len(present), len(present) + 1))
    for t, p in zip(target, pred):
        matrix[col[int(t)], col.get(int(p), len(present))] += 1
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(24.0, 3 + 0.25 * len(present))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    if len(present) <= 60:
        labels_ = [names[c] for c in present]
        ax.set_xticks(range(len(present) + 1), labels_ + ["other"], rotation=90, fontsize=7)
        ax.set_yticks(range(len(present)), labels_, fontsize=7)
    ax.set_xlabel("predicted action")
    ax.set_ylabel("true action")
    fig.colorbar(image, ax=ax, label="share of the true class's clips")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return csv_path, png_path
