"""Build failures: clear messages, exit 2, and never a half-written or lost bundle."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from karmma_edge.bundle import Bundle
from conftest import karmma_cli


def test_truncated_checkpoint_is_a_user_error(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("cache"))
    ckpt = run / "model.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 3])
    r = karmma_cli("build", "--run", str(run), "--out", str(tmp_path / "b"))
    assert r.returncode == 2, r.stderr
    assert "model.pt" in r.stderr and "truncated" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_unknown_profile_for_the_model_is_a_user_error(tiny_run, tmp_path):
    r = karmma_cli("build", "--run", str(tiny_run), "--profile", "rgb+depth", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "depth" in r.stderr and "Traceback" not in r.stderr


def test_empty_calibration_set_is_a_user_error(tiny_run, tmp_path):
    r = karmma_cli("build", "--run", str(tiny_run), "--calibration-size", "0", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "--calibration-size" in r.stderr and "Traceback" not in r.stderr


def test_tensorrt_absent_says_how_to_install_it(tiny_run, tmp_path):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    r = karmma_cli("build", "--run", str(tiny_run), "--out", str(tmp_path / "b"), "--backend", "tensorrt")
    assert r.returncode == 2
    assert "Jetson" in r.stderr and "the device" in r.stderr
    assert not (tmp_path / "b").exists()


def test_kill_9_during_build_leaves_the_previous_bundle_intact(tiny_run, tiny_bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    proc = subprocess.Popen([sys.executable, "-m", "karmma_edge.cli", "build", "--run", str(tiny_run),
                             "--out", str(target), "--calibration-size", "8"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # Kill once the build is writing its new copy: a profile's FP32 graph exists in the temp dir.
    while time.monotonic() < deadline and not list(tmp_path.glob(".bundle.tmp-*/profiles/*/model.fp32.onnx")):
        assert proc.poll() is None, "build ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    bundle = Bundle(target)
    for profile in bundle.profiles:                      # every hash still verifies
        bundle.artifact(profile, "int8")
        bundle.artifact(profile, "fp32")
