"""Bench pieces that need no bundle: the drop rule, tegrastats and L4T parsing, the machine probe."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest

from karmma_edge.drop_curve import numpy_present as _numpy_present
from karmma_edge.edge_runtime.measure.deployed_curve import DRAWS, P_VALUES, deployed_curve
from karmma_edge.edge_runtime.measure.machine import describe_machine, parse_l4t_release
from karmma_edge.edge_runtime.measure.resource_monitor import ResourceMonitor, parse_tegrastats


def test_numpy_draws_follow_the_eval_rule():
    for p in (0.0, 0.5, 0.9):
        present = _numpy_present(5000, 3, p, seed=1)
        assert present.any(axis=1).all()                      # at least one modality kept
        if p == 0.0:
            assert present.all()
    # With p = 0.5 and one kept on an empty draw, each modality is present with prob 0.5 + 0.125 / 3.
    assert _numpy_present(20000, 3, 0.5, seed=2).mean() == pytest.approx(0.5 + 0.125 / 3, abs=0.01)


@pytest.mark.skipif(not find_spec("torch"), reason="compares against the training code's constants (torch)")
def test_curve_constants_match_karmma_edge_eval():
    from karmma_edge.train import evaluate

    assert P_VALUES == evaluate.P_VALUES and DRAWS == evaluate.DRAWS


def test_selector_falls_back_and_counts_clips_no_engine_fits():
    """A bundle with only rgb+audio and audio: live {rgb} has no engine, live {rgb, flow, audio} runs rgb+audio."""
    n, verb, noun = 40, np.zeros(40, int), np.zeros(40, int)
    right = (np.eye(2)[np.zeros(n, int)], np.eye(2)[np.zeros(n, int)])     # always correct
    curve = deployed_curve({"rgb+audio": right, "audio": right}, verb, noun, ("rgb", "flow", "audio"), draws_per_p=3)
    assert curve.engine["0.0"] == 100.0 and curve.no_engine["0.0"] == 0.0
    assert curve.no_engine["0.9"] > 0
    assert curve.engine["0.9"] == pytest.approx(100.0 - curve.no_engine["0.9"])


def test_parse_tegrastats_orin_line():
    line = ("RAM 2107/7620MB (lfb 1x4MB) SWAP 0/3810MB CPU [12%@1510,8%@1510] EMC_FREQ 0% GR3D_FREQ 45% "
            "cpu@48.5C VDD_IN 4718mW/4718mW VDD_CPU_GPU_CV 1053mW/1053mW")
    s = parse_tegrastats(line)
    assert (s.util_percent, s.mem_mb, s.power_w) == (45.0, 2107.0, 4.718)
    assert parse_tegrastats("nothing here").util_percent is None


def test_parse_l4t_release():
    assert parse_l4t_release("# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64") == "R36.3.0"


def test_machine_and_monitor_state_what_is_absent():
    m = describe_machine()
    assert m["cpu"] and m["cores_logical"] >= 1 and m["versions"]["onnxruntime"] != "absent"
    monitor = ResourceMonitor()
    with monitor.window() as w:
        sum(range(100_000))
    monitor.close()
    assert w.usage.peak_rss_mb > 0
    if not monitor.nvml.available:
        assert "NVML" in m["gpu_note"] and w.usage.gpu.util_percent is None
