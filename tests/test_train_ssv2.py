"""Something-Something v2 end to end with its single action label (issue 16, acceptance 3):
`reproduce` on the synthetic SSv2-layout smoke preset, then `build` and the real `serve` daemon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def ssv2_reproduced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from karmma_edge.train.reproduce import PRESETS, reproduce

    preset = PRESETS["smoke-ssv2"].model_copy(deep=True)
    preset.extractors["epochs"] = preset.teacher["epochs"] = preset.student["epochs"] = 1
    out = tmp_path_factory.mktemp("ssv2") / "reproduce"
    reproduce(preset, out, seed=0, progress=False, threads=1)
    return out


def test_reproduce_ssv2_writes_action_tables(ssv2_reproduced: Path):
    results = json.loads((ssv2_reproduced / "results.json").read_text())
    for method in results["methods"].values():
        assert list(method["subsets"]) == ["rgb+flow", "rgb", "flow"]     # SSv2 has no audio
        for s in method["subsets"].values():
            assert {"action_top1", "action_top5", "action_mean_class"} <= set(s)
            assert "verb_top1" not in s and "noun_top1" not in s
    run = json.loads((ssv2_reproduced / "runs" / "karmma_s" / "run.json").read_text())
    assert list(run["classes"]) == ["action"] and len(run["classes"]["action"]) == 3
    md = (ssv2_reproduced / "results.md").read_text()
    assert "action top-1 per inference modalities" in md and "| V+F |" in md and "Verb / noun" not in md


def test_ssv2_bundle_serves_action_predictions(ssv2_reproduced: Path, tmp_path: Path):
    import onnxruntime as ort
    from test_runtime_daemon import EventReader, start_daemon, stop

    from karmma_edge.bundle import load_manifest
    from karmma_edge.inputs import FlowEncoding
    from karmma_edge.quantize.build import BuildOptions, build_bundle

    bundle = tmp_path / "bundle"
    build_bundle(BuildOptions(run=ssv2_reproduced / "runs" / "karmma_s", out=bundle, calibration_size=8,
                              threads=1), progress=False)
    manifest = load_manifest(bundle)
    actions = manifest.classes["action"]
    assert manifest.outputs == ["action"] and list(manifest.classes) == ["action"]
    # SSv2's flow is computed at the video's size (the tiny preset's 64 px) with EPIC's 20 px bound.
    assert manifest.flow_encoding == FlowEncoding(20.0, 64, 64)
    sess = ort.InferenceSession(str(bundle / "profiles" / "rgb" / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["action"] and sess.get_outputs()[0].shape[-1] == len(actions)

    video = next((ssv2_reproduced / "data" / "20bn-something-something-v2").glob("*.webm"))
    daemon = start_daemon(bundle, tmp_path, "--rgb", f"file:{video}", "--audio", "none",
                          config={"sources": {"loop": True}})
    try:
        reader = EventReader(daemon.url)
        reader.start()
        daemon.wait_for(lambda h: len(reader.events) >= 2, "two predictions")
        event = reader.events[0]
        assert event["profile"] in ("rgb+flow", "rgb") and event["verb"] == [] and event["noun"] == []
        assert len(event["action"]) == 3 and {a["name"] for a in event["action"]} == set(actions)
        scores = [a["score"] for a in event["action"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-3)
    finally:
        stop(daemon)
