"""Top-1, top-5, mean class accuracy, and `eval`'s per-class CSV and confusion matrix (issue 16, acceptance 5)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from karmma_edge.metrics import action_names, per_class_rows, scores


def one_hot_ranked(order: list[list[int]], classes: int) -> np.ndarray:
    """Logits whose ranking of classes, per row, is `order` (first = highest)."""
    x = np.zeros((len(order), classes))
    for i, row in enumerate(order):
        for rank, c in enumerate(row):
            x[i, c] = 10.0 - rank
    return x


def test_single_action_head_scores():
    # 4 clips of class 0, 1 clip of class 1: mean class accuracy weighs the classes, not the clips.
    logits = {"action": one_hot_ranked([[0, 1], [0, 1], [0, 1], [1, 0], [0, 2, 3, 4, 5, 1]], 7)}
    labels = {"action": np.array([0, 0, 0, 0, 1])}
    s = scores(logits, labels)
    assert s["action_top1"] == pytest.approx(60.0)         # 3 of 5
    assert s["action_top5"] == pytest.approx(80.0)         # the last clip's class is 6th
    assert s["action_mean_class"] == pytest.approx(37.5)   # (3/4 + 0/1) / 2
    assert "verb_top1" not in s


def test_verb_noun_action_top5_uses_the_joint_score():
    verb = np.array([[3.0, 0.0], [0.0, 3.0]])
    noun = np.array([[2.0, 1.9, -5.0], [0.0, 0.0, 4.0]])
    logits, labels = {"verb": verb, "noun": noun}, {"verb": np.array([0, 0]), "noun": np.array([1, 2])}
    s = scores(logits, labels, k=2)
    assert s["verb_top1"] == 50.0 and s["noun_top1"] == 50.0 and s["action_top1"] == 0.0
    # Clip 0: (verb 0, noun 1) is the second-best pair; clip 1: (verb 0, noun 2) is second too.
    assert s["action_top2"] == 100.0
    rows = per_class_rows(logits, labels, action_names({"verb": ["a", "b"], "noun": ["x", "y", "z"]}), k=2)
    assert [(r["name"], r["clips"], r["top1"], r["top2"]) for r in rows] == [("a y", 1, 0.0, 100.0),
                                                                             ("a z", 1, 0.0, 100.0)]


def test_eval_writes_top5_mean_class_per_class_csv_and_confusion_png(tiny_run, tmp_path):
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from karmma_edge.cli import app

    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", "--run", str(tiny_run), "--json", str(tmp_path / "e.json"),
                                      "--draws", "2", "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "e.json").read_text())
    for s in data["subsets"].values():
        assert {"action_top1", "action_top5", "action_mean_class", "verb_top5", "noun_top5"} <= set(s)
        assert s["action_top5"] >= s["action_top1"] and s["verb_top5"] >= s["verb_top1"]
    with (report / "per_class.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    run = json.loads((tiny_run / "run.json").read_text())
    names = action_names(run["classes"])
    # The tiny test split (eval's default) holds every one of its 12 actions twice.
    assert len(rows) == 12 and all(r["name"] in names and int(r["clips"]) == 2 for r in rows)
    full = data["subsets"]["rgb+flow+audio"]
    assert np.mean([float(r["top1"]) for r in rows]) == pytest.approx(full["action_mean_class"])
    assert (report / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
