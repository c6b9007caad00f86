"""The bundle `build` writes: every profile, FP32 and Q/DQ INT8 graphs, hashes that match."""

import json

import numpy as np
import onnx
import pytest

from karmma_edge.bundle import Bundle, sha256_file
from karmma_edge.errors import BundleError
from karmma_edge.profiles import all_profiles


def test_bundle_has_every_profile_with_hashed_artifacts(tiny_bundle):
    bundle = Bundle(tiny_bundle)
    assert bundle.profiles == all_profiles()
    for profile, entry in bundle.manifest.profiles.items():
        for art in entry.artifacts.values():
            assert sha256_file(tiny_bundle / art.path) == art.sha256
        assert (tiny_bundle / "profiles" / profile / "model.fp32.onnx").is_file()
        assert (tiny_bundle / "profiles" / profile / "model.int8.onnx").is_file()
        assert set(entry.accuracy) == {"fp32", "int8"}


def test_bundle_carries_the_flow_encoding_the_data_declared(tiny_bundle):
    """The device makes its flow from it (tests/test_runtime_flow.py): the tiny data's 64 px frames, 8 px."""
    from karmma_edge.inputs import FlowEncoding

    assert Bundle(tiny_bundle).manifest.flow_encoding == FlowEncoding(8.0, 64, 64)


def test_each_graph_takes_only_its_profiles_inputs(tiny_bundle):
    bundle = Bundle(tiny_bundle)
    for profile in bundle.profiles:
        for kind in ("fp32", "int8"):
            model = onnx.load(bundle.artifact(profile, kind))
            assert [i.name for i in model.graph.input] == profile.split("+")
            assert [o.name for o in model.graph.output] == ["verb", "noun"]


def test_int8_graphs_are_symmetric_qdq(tiny_bundle):
    bundle = Bundle(tiny_bundle)
    model = onnx.load(bundle.artifact("rgb+flow+audio", "int8"))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    qnodes = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qnodes, "no Q/DQ nodes in the INT8 graph"
    for node in qnodes:
        if len(node.input) > 2 and node.input[2] in inits:
            zp = inits[node.input[2]]
            assert zp.dtype == np.int8 and not zp.any(), f"{node.name}: zero point not int8 zero"


def test_calibration_report_and_parity_recorded(tiny_bundle):
    bundle = Bundle(tiny_bundle)
    for profile in bundle.profiles:
        report = json.loads(bundle.artifact(profile, "calibration_report").read_text())
        assert report["parity_max_abs_diff"] <= 1e-4
        assert report["clips"] == bundle.manifest.profiles[profile].calibration.clips


def test_tampered_artifact_is_refused(tiny_bundle, tmp_path):
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    target = copy / "profiles" / "audio" / "model.int8.onnx"
    target.write_bytes(target.read_bytes() + b"\0")
    with pytest.raises(BundleError, match="does not match the SHA-256"):
        Bundle(copy).artifact("audio", "int8")
