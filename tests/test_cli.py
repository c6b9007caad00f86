"""The command line's surface: --version, choices listed in --help, deprecated spellings, do-nothing options."""

import pytest

import karmma_edge
from conftest import karmma_cli


def test_version_prints_the_package_version():
    r = karmma_cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"karmma-edge {karmma_edge.__version__}"


@pytest.mark.parametrize("command, choices", [
    (["build"], ["int8", "fp16", "fp32", "onnxruntime", "tensorrt", "torch-tensorrt", "minmax", "entropy",
                 "percentile"]),
    (["data", "synth"], ["tiny", "demo", "full", "scale", "folders", "tar", "epic100", "ssv2"]),
    (["reproduce"], ["smoke", "smoke-ssv2", "demo", "full"]),
    (["demo"], ["smoke", "demo", "full", "--ce-student"]),
    (["device-check"], ["int8", "fp16", "fp32", "epic100", "ssv2"]),
])
def test_help_lists_the_enumerated_choices(command, choices):
    r = karmma_cli(*command, "--help")
    assert r.returncode == 0
    missing = [c for c in choices if c not in r.stdout]
    assert not missing, f"{' '.join(command)} --help lacks {missing}"


def test_a_value_outside_the_choices_exits_2_naming_the_option(tmp_path):
    r = karmma_cli("build", "--run", str(tmp_path), "--out", str(tmp_path / "b"), "--precision", "fp8")
    assert r.returncode == 2
    assert "--precision" in r.stderr and "fp8" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_deprecated_profile_spelling_still_works_and_warns(tmp_path):
    # --profile reaches the profile check (which names the bad modality) and warns about its spelling.
    r = karmma_cli("build", "--run", str(tmp_path), "--profile", "rgb+smell", "--out", str(tmp_path / "b"))
    assert r.returncode == 2
    assert "--profile is deprecated" in r.stderr and "--profiles" in r.stderr
    assert "smell" in r.stderr
    both = karmma_cli("build", "--run", str(tmp_path), "--profile", "rgb", "--profiles", "rgb", "--out", "x")
    assert both.returncode == 2 and "--profiles only" in both.stderr


def test_deprecated_root_spelling_still_works_and_warns(tiny_dataset):
    old = karmma_cli("data", "check", "--root", str(tiny_dataset))
    new = karmma_cli("data", "check", "--data", str(tiny_dataset))
    assert old.returncode == new.returncode == 0
    assert old.stdout == new.stdout
    assert "--root is deprecated" in old.stderr and "--data" in old.stderr
    assert "deprecated" not in new.stderr


@pytest.mark.parametrize("args, option", [
    (["--precision", "fp16"], "--precision"),              # ONNX Runtime builds no engine: ignored before
    (["--dla-core", "0"], "--dla-core"),
    (["--engine-cache", "cache"], "--engine-cache"),
    (["--force"], "--force"),
])
def test_build_refuses_an_option_that_would_do_nothing(tmp_path, args, option):
    r = karmma_cli("build", "--run", str(tmp_path), "--out", str(tmp_path / "b"), *args)
    assert r.returncode == 2
    assert option in r.stderr and "--backend tensorrt" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "b").exists()


def test_build_for_an_existing_bundle_refuses_new_bundle_options(tmp_path):
    r = karmma_cli("build", "--bundle", str(tmp_path), "--backend", "tensorrt", "--max-drop", "2")
    assert r.returncode == 2
    assert "--max-drop" in r.stderr and "--run" in r.stderr


def test_torch_tensorrt_build_refuses_gate_options(tmp_path):
    r = karmma_cli("build", "--run", str(tmp_path), "--out", str(tmp_path / "b"), "--backend", "torch-tensorrt",
               "--calibration-method", "entropy")
    assert r.returncode == 2
    assert "--calibration-method" in r.stderr and "torch-tensorrt" in r.stderr
    assert not (tmp_path / "b").exists()


def test_bench_refuses_fp16_with_onnxruntime_only(tmp_path):
    r = karmma_cli("bench", "--bundle", str(tmp_path), "--out", str(tmp_path / "r"),
               "--backends", "onnxruntime", "--precisions", "fp16,int8")
    assert r.returncode == 2
    assert "--precisions fp16" in r.stderr and "tensorrt" in r.stderr
    assert not (tmp_path / "r").exists()


def test_help_text_cites_no_design_sections():
    out = "".join(karmma_cli(*c, "--help").stdout for c in (["serve"], ["build"], ["bench"], []))
    assert "DESIGN" not in out


def test_serve_refuses_a_precision_it_cannot_serve(tmp_path):
    r = karmma_cli("serve", "--bundle", str(tmp_path), "--precision", "fp16")
    assert r.returncode == 2
    assert "--precision" in r.stderr and "fp16" in r.stderr


def test_serve_config_names_a_packaged_preset():
    from karmma_edge.presets import CONFIG_DIR, resolve_config

    assert resolve_config("serve-files") == CONFIG_DIR / "serve-files.yaml"
    assert resolve_config("configs/serve-files.yaml") == CONFIG_DIR / "serve-files.yaml"   # the old repo path
