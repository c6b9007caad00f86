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
from karmma_edge.presets import CONFIG_DIR  # noqa: E402
from karmma_edge.profiles import all_profiles  # noqa: E402

CONFIGS = CONFIG_DIR
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
P_KEYS = [f"{0.1 * i:.1f}" for i in range(10)]


def test_reproduce_writes_paper_tables(tiny_dataset, tmp_path):
    from karmma_edge.train.reproduce import PRESETS, reproduce

    preset = PRESETS["smoke"].model_copy(deep=True)
    preset.extractors["epochs"] = preset.teacher["epochs"] = preset.student["epochs"] = 1
    results = reproduce(preset, tmp_path, seed=0, progress=False, threads=1, data=tiny_dataset)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == results
    assert set(results) == {"split", "clips", "methods", "cost", "checks"}
    # Figures on test (the tiny data has one); every run chose its epochs on validation.
    assert results["split"] == "test" and results["clips"] == 24
    names = {"teacher", "baseline", "baseline_dropout", "control", "karmma_s"}
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
    assert "test split" in md.splitlines()[0] and "Test split (24 clips: one clip is worth 4.17 points), top-1" in md
    # A column in Table A's three subset tables, a row in Table B.
    assert md.count("| KARMMA_T | Baseline | Baseline w/ δ | Pre-trained w/ δ | KARMMA_S |") == 3
    assert sum(line.startswith("| Pre-trained w/ δ | ") for line in md.splitlines()) == 1
    checks = results["checks"]
    assert set(checks["checks"]) == {"order_mean", "order_p05", "kept_ratio", "beats_control"}
    assert checks["holds"] == all(checks["checks"].values())
    beats = checks["mean_top1"]["karmma_s"] > checks["mean_top1"]["control"]
    assert checks["checks"]["beats_control"] == beats
    assert f"KARMMA_S beats the control {'holds' if beats else 'does NOT hold'}" in md
    # The control: the student's own encoders pre-trained on the pretrain pool with the extractors'
    # recipe, loaded into a student trained like baseline_dropout; KARMMA_S starts from them too.
    runs = tmp_path / "runs"
    pre = json.loads((runs / "student_encoders" / "run.json").read_text())
    ext = json.loads((runs / "extractors" / "run.json").read_text())
    assert pre["model"] == preset.student["model"] and pre["data"]["split"] == "pretrain"
    assert {k: pre["config"][k] for k in ("epochs", "lr", "batch_size", "split")} == \
        {k: ext["config"][k] for k in ("epochs", "lr", "batch_size", "split")}
    control = json.loads((runs / "control" / "run.json").read_text())
    dropout = json.loads((runs / "baseline_dropout" / "run.json").read_text())
    karmma_s = json.loads((runs / "karmma_s" / "run.json").read_text())
    assert control["method"] == "control" and control["config"]["init_extractors"] == str(runs / "student_encoders")
    assert {**control["config"], "init_extractors": None} == dropout["config"]
    assert karmma_s["method"] == "karmma_s" and {**control["config"], "teacher": str(runs / "teacher")} == karmma_s["config"]
    assert (tmp_path / "subsets.png").stat().st_size > 0 and (tmp_path / "missing_modalities.png").stat().st_size > 0
    # The seeds' table: one row per directory, the checks as computed above.
    table = subprocess.run([sys.executable, str(SCRIPTS / "reproduce_seeds.py"), str(tmp_path), str(tmp_path)],
                           capture_output=True, text=True)
    assert table.returncode == (0 if checks["holds"] else 1), table.stderr
    rows = [line for line in table.stdout.splitlines() if line.startswith("| 0 | test |")]
    mean = checks["mean_top1"]
    assert len(rows) == 2 and rows[0].startswith(
        "| 0 | test | " + " | ".join(f"{mean[m]:.2f}" for m in ("teacher", "karmma_s", "baseline_dropout",
                                                                  "baseline", "control")) + " | ")
    assert f"Every check held on {2 if checks['holds'] else 0} of 2 seeds." in table.stdout
    # The teacher's tokens are cached once per modality and split: train and validation from its
    # training (KARMMA_S reads train's), test from the evaluation.
    tokens = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "tokens").glob("*.npy"))
    assert tokens == ["test"] * 3 + ["train"] * 3 + ["validation"] * 3


def test_eval_command(tiny_run, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", "--run", str(tiny_run), "--json", str(out), "--draws", "3",
                                      "--split", "validation"])
    assert result.exit_code == 0, result.output
    assert "on the validation split (24 clips)" in result.output
    data = json.loads(out.read_text())
    assert list(data["subsets"]) == all_profiles() and list(data["curve"]) == P_KEYS
    assert data["split"] == "validation" and data["clips"] == 24
    # Training's per-epoch metrics are on validation, the split the run chose on.
    recorded = json.loads((tiny_run / "run.json").read_text())["metrics"]
    assert data["subsets"]["rgb+flow+audio"]["action_top1"] == pytest.approx(recorded["action_top1"])


def test_evaluate_run_scores_the_test_split_by_default(tiny_run, tiny_dataset):
    from karmma_edge.data import open_dataset
    from karmma_edge.data.arrays import load_split
    from karmma_edge.metrics import head_labels, label_heads, scores
    from karmma_edge.train.evaluate import evaluate_run
    from karmma_edge.train.loop import predict
    from karmma_edge.train.runs import load_student

    result = evaluate_run(tiny_run, draws=2, progress=False)
    student, info = load_student(tiny_run)
    test = load_split(tiny_dataset, "test", student.spec, progress=False)
    assert result["split"] == "test" and result["clips"] == len(test)
    # The scores are the student's on the test clips, computed here apart from evaluate_run.
    labels = head_labels(label_heads(info["classes"]), test.verb, test.noun)
    expected = scores(predict(student, test, student.modalities), labels)
    assert result["subsets"]["rgb+flow+audio"] == pytest.approx(expected)
    ids = {split: {s.id for s in open_dataset(tiny_dataset, split, student.spec).segments}
           for split in ("test", "validation")}
    assert ids["test"] and not ids["test"] & ids["validation"]


DRIVER = """
import json, os, sys
from pathlib import Path

from karmma_edge.train import datasets
from karmma_edge.train.config import load_config
from karmma_edge.train.fit import Interrupted
from karmma_edge.train.loop import train_student

config, data, out, stop = sys.argv[1:5]
seen = []
read = datasets.ClipDataset.__getitems__


def recording(self, indices):      # the clips this process reads, batch by batch
    seen.append([int(i) for i in indices])
    return read(self, indices)


datasets.ClipDataset.__getitems__ = recording
cfg = load_config(Path(config), data=Path(data))
cfg.threads, cfg.checkpoint_steps, cfg.epochs = 1, 1, 2
try:
    train_student(cfg, Path(out), progress=False, stop_after_steps=int(stop) or None)
except Interrupted:
    sys.exit(3)
finally:
    Path(out, f"seen-{os.environ['RANK']}-{stop}.json").write_text(json.dumps(seen))
"""


def torchrun_student(driver: Path, data: Path, out: Path, stop: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(driver),
           str(CONFIGS / "student-tiny.yaml"), str(data), str(out), str(stop)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_torchrun_two_processes_disjoint_halves_and_killed_run_resumes(tiny_dataset, tmp_path):
    """Acceptance 2 (issue 16): each of 2 processes reads a disjoint half of every epoch, and a run
    stopped mid-epoch after a checkpoint resumes to the same weights and history."""
    from karmma_edge.train.evaluate import evaluate_run
    from karmma_edge.train.runs import CHECKPOINT, load_student

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    whole = tmp_path / "whole"
    done = torchrun_student(driver, tiny_dataset, whole)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    seen = [json.loads((whole / f"seen-{r}-0.json").read_text()) for r in (0, 1)]
    steps = 48 // 16                                   # tiny train split, batch 16: 3 steps per epoch
    assert [len(s) for s in seen] == [2 * steps] * 2
    for epoch in range(2):
        halves = [{i for batch in s[epoch * steps:(epoch + 1) * steps] for i in batch} for s in seen]
        assert len(halves[0]) == len(halves[1]) == 24 and not halves[0] & halves[1]
        assert halves[0] | halves[1] == set(range(48))
    assert seen[0][:steps] != seen[0][steps:]          # a new order every epoch

    student, info = load_student(whole)
    assert len(info["history"]) == 2
    result = evaluate_run(whole, draws=2, progress=False, split="validation")
    # The checkpoint evaluates to what the run recorded (on validation), as a single-process run's does.
    assert result["subsets"]["rgb+flow+audio"]["action_top1"] == pytest.approx(info["metrics"]["action_top1"])

    split = tmp_path / "split"
    stopped = torchrun_student(driver, tiny_dataset, split, stop=4)     # mid-way through epoch 2
    assert stopped.returncode != 0 and not (split / "run.json").exists()
    resumed = torchrun_student(driver, tiny_dataset, split)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-4000:]
    for r in (0, 1):
        first = json.loads((split / f"seen-{r}-4.json").read_text())
        rest = json.loads((split / f"seen-{r}-0.json").read_text())
        assert len(first) == 4 and first + rest == seen[r]
    assert json.loads((split / "run.json").read_text())["history"] == info["history"]
    a = torch.load(whole / CHECKPOINT, weights_only=False)["model"]
    b = torch.load(split / CHECKPOINT, weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_demo_configs_match_the_reproduce_preset():
    from karmma_edge.file_formats import read_yaml
    from karmma_edge.train.reproduce import PRESETS

    demo = PRESETS["demo"]
    assert read_yaml(CONFIGS / "extractors-demo.yaml") == {"split": "pretrain", **demo.extractors}
    assert read_yaml(CONFIGS / "teacher-demo.yaml") == demo.teacher
    assert read_yaml(CONFIGS / "student-encoders-demo.yaml") == {"split": "pretrain", **demo.extractors,
                                                                 **demo.student_encoders, "model": demo.student["model"]}
    assert read_yaml(CONFIGS / "karmma-demo.yaml") == demo.student


def test_baseline_dropout_override_reaches_only_that_stage(tmp_path):
    from karmma_edge.train.reproduce import PRESETS, stage_configs

    preset = PRESETS["smoke"].model_copy(update={"baseline_dropout": {"modality_dropout": 0.1}})
    common = {"data": tmp_path, "format": "epic100", "seed": 0, "cache_dir": tmp_path / "cache", "threads": None}
    dropout = {name: cfg.modality_dropout for name, (_, cfg) in stage_configs(preset, tmp_path, common).items()
               if hasattr(cfg, "modality_dropout") and name != "teacher"}
    assert dropout == {"baseline": 0.0, "baseline_dropout": 0.1, "control": preset.student["modality_dropout"],
                       "karmma_s": preset.student["modality_dropout"]}


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "teacher.yaml"
    bad.write_text("fusion_dim: -3\nextractor_files: {sonar: x.onnx}\n")
    from karmma_edge.errors import ConfigError
    from karmma_edge.train.config import TeacherConfig, load_config

    with pytest.raises(ConfigError, match="fusion_dim") as e:
        load_config(bad, TeacherConfig)
    assert "extractor_files.sonar" in str(e.value)
