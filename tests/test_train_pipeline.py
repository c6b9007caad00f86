"""The KARMMA chain end to end at toy size, `eval`, and training under torchrun (acceptance 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from karmma_edge.cli import app  # noqa: E402
from karmma_edge.profiles import all_profiles  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
P_KEYS = [f"{0.1 * i:.1f}" for i in range(10)]


def test_reproduce_writes_paper_tables(tiny_dataset, tmp_path):
    from karmma_edge.train.reproduce import PRESETS, reproduce

    preset = PRESETS["smoke"].model_copy(deep=True)
    preset.extractors["epochs"] = preset.teacher["epochs"] = preset.student["epochs"] = 1
    results = reproduce(preset, tmp_path, seed=0, progress=False, threads=1, data=tiny_dataset)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == results
    assert set(results) == {"methods", "cost"}
    names = {"teacher", "baseline", "baseline_dropout", "karmma_s"}
    assert set(results["methods"]) == names and set(results["cost"]) == names
    for r in results["methods"].values():
        assert list(r["subsets"]) == all_profiles()
        assert all({"action_top1", "action_top5", "action_mean_class", "verb_top1", "noun_top1"} <= set(s)
                   for s in r["subsets"].values())
        assert list(r["curve"]) == P_KEYS
        # p = 0 keeps every modality: the curve starts at the all-modalities accuracy.
        assert r["curve"]["0.0"] == pytest.approx(r["subsets"]["rgb+flow+audio"]["action_top1"])
    for c in results["cost"].values():
        assert list(c) == all_profiles() and all(v["gflops"] > 0 and v["params"] > 0 for v in c.values())
    md = (tmp_path / "results.md").read_text()
    assert "| V+F+A |" in md and "KARMMA_S" in md and "Table B" in md
    assert (tmp_path / "subsets.png").stat().st_size > 0 and (tmp_path / "missing_modalities.png").stat().st_size > 0
    # The distilled student read the teacher's cached tokens: one token file per modality and split.
    assert len(list((tmp_path / "cache" / "tokens").glob("*.npy"))) == 6


def test_eval_command(tiny_run, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", "--run", str(tiny_run), "--json", str(out), "--draws", "3"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert list(data["subsets"]) == all_profiles() and list(data["curve"]) == P_KEYS
    recorded = json.loads((tiny_run / "run.json").read_text())["metrics"]
    assert data["subsets"]["rgb+flow+audio"]["action_top1"] == pytest.approx(recorded["action_top1"])


def test_torchrun_two_processes(tiny_dataset, tmp_path):
    from karmma_edge.train.evaluate import evaluate_run
    from karmma_edge.train.runs import load_student

    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "karmma_edge.cli", "train", "student", "--config", str(CONFIGS / "student-tiny.yaml"),
           "--data", str(tiny_dataset), "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    student, info = load_student(out)
    assert info["history"] and len(info["history"]) == 2
    result = evaluate_run(out, draws=2, progress=False)
    # The checkpoint evaluates to what the run recorded, as a single-process run's does.
    assert result["subsets"]["rgb+flow+audio"]["action_top1"] == pytest.approx(info["metrics"]["action_top1"])


def test_demo_configs_match_the_reproduce_preset():
    from karmma_edge.train.config import read_yaml
    from karmma_edge.train.reproduce import PRESETS

    demo = PRESETS["demo"]
    assert read_yaml(CONFIGS / "extractors-demo.yaml") == {"split": "pretrain", **demo.extractors}
    assert read_yaml(CONFIGS / "teacher-demo.yaml") == demo.teacher
    assert read_yaml(CONFIGS / "karmma-demo.yaml") == demo.student


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "teacher.yaml"
    bad.write_text("fusion_dim: -3\nextractor_files: {sonar: x.onnx}\n")
    from karmma_edge.errors import ConfigError
    from karmma_edge.train.config import TeacherConfig, load_config

    with pytest.raises(ConfigError, match="fusion_dim") as e:
        load_config(bad, TeacherConfig)
    assert "extractor_files.sonar" in str(e.value)
