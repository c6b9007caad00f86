"""Learned tokens as export uses them (acceptance 4), resume (acceptance 5), FLOPs (acceptance 2)."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from karmma_edge.profiles import MODALITIES  # noqa: E402
from karmma_edge.presets import CONFIG_DIR  # noqa: E402

CONFIGS = CONFIG_DIR


def inputs_for(student, batch=3, seed=0):
    from karmma_edge.quantize.export import example_inputs

    return dict(zip(student.modalities, example_inputs(student, student.modalities, batch=batch, seed=seed)))


@pytest.mark.parametrize("absent", MODALITIES)
def test_absent_modality_equals_branch_removed_with_constant_tokens(tiny_run, absent):
    from karmma_edge.train.runs import load_student

    student, _ = load_student(tiny_run)
    x = inputs_for(student)
    present = {m: t for m, t in x.items() if m != absent}
    with torch.no_grad():
        ref = student(present)
        # What export does: drop the branch, keep its learned tokens as a constant.
        pruned = copy.deepcopy(student)
        constant = pruned.fusion.missing_tokens[absent].detach().clone()
        del pruned.extractors[absent]
        del pruned.fusion.missing_tokens[absent]
        tokens = [constant.expand(3, -1, -1) if m == absent else
                  pruned.fusion.tokens_for(m, pruned.extractors[m](x[m]), 3) for m in pruned.modalities]
        out = pruned.fusion(tokens)
        # The training path: every input given, the mask says which are missing.
        mask = torch.tensor([[m != absent for m in student.modalities]] * 3)
        masked = student(x, mask)
    for a, b, c in zip(ref, out, masked):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ref[0], student(x)[0])      # the modality mattered


def test_resumed_run_matches_uninterrupted(tiny_dataset, tmp_path):
    from karmma_edge.train.config import load_config
    from karmma_edge.train.fit import Interrupted
    from karmma_edge.train.loop import train_student

    cfg = load_config(CONFIGS / "student-tiny.yaml", data=tiny_dataset)
    cfg.epochs, cfg.threads, cfg.cache_dir = 3, 1, tmp_path / "cache"
    whole = train_student(cfg, tmp_path / "whole", progress=False)
    with pytest.raises(Interrupted):
        train_student(cfg, tmp_path / "split", progress=False, stop_after=1)
    assert not (tmp_path / "split" / "run.json").exists()
    resumed = train_student(cfg, tmp_path / "split", progress=False)
    assert resumed["history"] == whole["history"]
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_demo_student_costs_at_most_a_quarter_of_the_teacher():
    from karmma_edge.train.cost import dummy_input, student_cost, teacher_cost
    from karmma_edge.train.extractors import EXTRACTORS, TorchTokenSource, build_extractor
    from karmma_edge.train.models import create_student
    from karmma_edge.train.reproduce import PRESETS
    from karmma_edge.train.teacher import Teacher

    demo = PRESETS["demo"]
    student = create_student(demo.student["model"], {"verb": 6, "noun": 6})
    ecfg = EXTRACTORS[demo.extractors["model"]]
    assert ecfg.spec == student.spec
    sources = {m: TorchTokenSource(m, build_extractor(ecfg, m).eval(), "-", "-") for m in MODALITIES}
    dims = {m: s.tokens(dummy_input(ecfg.spec, m).numpy()).shape[1:] for m, s in sources.items()}
    t = demo.teacher
    teacher = Teacher(dims, t["fusion_dim"], t["fusion_depth"], t["fusion_heads"], {"verb": 6, "noun": 6})
    s_cost, t_cost = student_cost(student), teacher_cost(teacher, sources, ecfg.spec)
    assert s_cost["rgb+flow+audio"]["gflops"] <= 0.25 * t_cost["rgb+flow+audio"]["gflops"]
    assert all(s_cost[p]["params"] < t_cost[p]["params"] for p in s_cost)


def test_scoring_only_the_last_epoch_trains_the_same_weights(tiny_dataset, tmp_path):
    """The demo skips the per-epoch held-out scores: same weights, same final metrics, one history row."""
    from karmma_edge.train.config import load_config
    from karmma_edge.train.loop import train_student

    cfg = load_config(CONFIGS / "student-tiny.yaml", data=tiny_dataset)
    cfg.epochs, cfg.threads, cfg.cache_dir = 3, 1, tmp_path / "cache"
    every = train_student(cfg, tmp_path / "every", progress=False)
    last = train_student(cfg, tmp_path / "last", progress=False, every_epoch=False)
    assert [h["epoch"] for h in every["history"]] == [1, 2, 3] and [h["epoch"] for h in last["history"]] == [3]
    assert last["history"][0] == every["history"][-1] and last["metrics"] == every["metrics"]
    a = torch.load(tmp_path / "every" / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "last" / "model.pt", weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_streamed_clips_train_exactly_like_the_decoded_cache(tiny_dataset, tmp_path):
    """Issue 16: clips decoded on the fly by 2 DataLoader workers give the run that the on-disk
    decoded cache gives, and nothing of the training split is cached."""
    from karmma_edge.train.config import load_config
    from karmma_edge.train.loop import train_student

    cfg = load_config(CONFIGS / "student-tiny.yaml", data=tiny_dataset)
    cfg.epochs, cfg.threads = 1, 1
    cached = train_student(cfg.model_copy(update={"cache_dir": tmp_path / "c1"}), tmp_path / "cached", progress=False)
    streamed = train_student(cfg.model_copy(update={"cache_dir": tmp_path / "c2", "decoded_cache_gb": 0.0,
                                                    "workers": 2}), tmp_path / "streamed", progress=False)
    assert [h["loss"] for h in streamed["history"]] == [h["loss"] for h in cached["history"]]
    assert streamed["metrics"]["action_top1"] == cached["metrics"]["action_top1"]
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "c1").iterdir()) == ["train", "validation"]
    assert [p.name.split("-")[0] for p in (tmp_path / "c2").iterdir()] == ["validation"]


@pytest.fixture(scope="module")
def pretrained_student_encoders(tiny_dataset, tmp_path_factory):
    """student-xs's own encoders pre-trained one epoch on the tiny pretrain pool: the control's first stage."""
    from karmma_edge.train.config import ExtractorsConfig
    from karmma_edge.train.pretrain import train_extractors

    out = tmp_path_factory.mktemp("control") / "encoders"
    train_extractors(ExtractorsConfig(data=tiny_dataset, model="student-xs", epochs=1, batch_size=16, threads=1),
                     out, progress=False)
    return out


def test_control_student_starts_from_its_pre_trained_encoders(pretrained_student_encoders):
    from karmma_edge.train.extractors import extractor_file, load_student_encoders, student_encoders
    from karmma_edge.train.models import create_student

    torch.manual_seed(0)
    student = create_student("student-xs", {"verb": 3, "noun": 4})
    fresh = copy.deepcopy(student.state_dict())
    load_student_encoders(student, student_encoders(pretrained_student_encoders, "student-xs"),
                          pretrained_student_encoders)
    for m in MODALITIES:
        saved = torch.load(extractor_file(pretrained_student_encoders, m), weights_only=True)
        loaded = student.extractors[m].state_dict()
        assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
        assert any(not torch.equal(fresh[f"extractors.{m}.{k}"], saved[k]) for k in saved)
    # The fusion block is not touched: it trains from scratch, as baseline_dropout's does.
    assert all(torch.equal(v, fresh[k]) for k, v in student.state_dict().items() if k.startswith("fusion."))


def test_control_init_from_another_run_is_refused_before_training(tiny_dataset, tiny_run, pretrained_student_encoders,
                                                                  tmp_path):
    from karmma_edge.errors import ConfigError
    from karmma_edge.train.config import load_config
    from karmma_edge.train.loop import train_student

    cfg = load_config(CONFIGS / "student-tiny.yaml", data=tiny_dataset)
    with pytest.raises(ConfigError, match=r"init_extractors: .* is a student run, not a `train extractors` run"):
        train_student(cfg.model_copy(update={"init_extractors": tiny_run}), tmp_path / "a", progress=False)
    other = cfg.model_copy(update={"model": "student-m", "init_extractors": pretrained_student_encoders})
    with pytest.raises(ConfigError, match="pre-trained model 'student-xs', but the student is 'student-m'.*"
                                          "`model: student-m`"):
        train_student(other, tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_control_init_error_on_the_command_line(tiny_dataset, tiny_run, tmp_path):
    from conftest import karmma_cli

    config = tmp_path / "control.yaml"
    config.write_text((CONFIGS / "student-tiny.yaml").read_text() + f"init_extractors: {tiny_run}\n")
    r = karmma_cli("train", "student", "--config", str(config), "--data", str(tiny_dataset),
                   "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    assert f"init_extractors: {tiny_run} is a student run" in r.stderr and "train extractors" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout and not (tmp_path / "run").exists()
    # The same run given by --init-extractors (what the stage-by-stage commands use) is checked alike.
    r = karmma_cli("train", "student", "--config", str(CONFIGS / "student-tiny.yaml"), "--data", str(tiny_dataset),
                   "--init-extractors", str(tiny_run), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and f"init_extractors: {tiny_run} is a student run" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout and not (tmp_path / "run").exists()
