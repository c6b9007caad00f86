"""INT8 accuracy is the Q/DQ graph's own, whatever the build host's processor: the evaluation mode is
pinned, the processor's int8 kernels are told apart, and serve does not trust inexact ones."""

from __future__ import annotations

import collections

import onnx
import onnxruntime as ort
import pytest

from karmma_edge.edge_runtime.backends.onnxruntime import QDQ_REFERENCE, OnnxRuntimeEngine, session_options
from karmma_edge.edge_runtime.cpu_features import Int8Support, int8_support, serving_precision

FUSED = {"QLinearConv", "QGemm", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QLinearAdd"}

EPYC_ROME = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f avx512bw avx512_vnni avx_vnni amx_int8\n"
ORIN = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics asimddp\n"


def ops_after_optimization(path, tmp_path, qdq_reference: bool) -> collections.Counter:
    opts = session_options(threads=1, qdq_reference=qdq_reference)
    opts.optimized_model_filepath = str(tmp_path / f"optimized-{qdq_reference}.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)


def test_the_reference_mode_runs_qdq_as_written(tiny_bundle, tmp_path):
    int8 = tiny_bundle / "profiles" / "rgb+flow+audio" / "model.int8.onnx"
    written = collections.Counter(n.op_type for n in onnx.load(int8).graph.node)
    reference = ops_after_optimization(int8, tmp_path, qdq_reference=True)
    assert not FUSED & set(reference)
    # Every Q/DQ node stays (ONNX Runtime may still give a shared DequantizeLinear one copy per consumer).
    assert reference["DequantizeLinear"] >= written["DequantizeLinear"] > 0
    assert reference["QuantizeLinear"] >= written["QuantizeLinear"] > 0
    # What the pin prevents: by default ONNX Runtime fuses the Q/DQ pairs into its int8 kernels.
    assert FUSED & set(ops_after_optimization(int8, tmp_path, qdq_reference=False))


def test_the_build_scores_every_int8_graph_as_written(tiny_run, tmp_path, monkeypatch):
    from karmma_edge.quantize.build import BuildOptions, build_bundle

    opened = []
    real = OnnxRuntimeEngine._activate

    def spy(self):
        opened.append((self.path.name, self.qdq_reference))
        real(self)

    monkeypatch.setattr(OnnxRuntimeEngine, "_activate", spy)
    manifest = build_bundle(BuildOptions(run=tiny_run, out=tmp_path / "b", profiles="audio", calibration_size=8),
                            progress=False)
    assert opened and all(reference for _, reference in opened), opened
    entry = manifest.profiles["audio"]
    for precision in ("fp32", "int8"):
        acc = entry.accuracy[precision]
        assert acc.evaluation == QDQ_REFERENCE
        assert acc.clips_right == round(acc.action_top1 * acc.clips / 100)
    drop = entry.quantization["drop"]
    assert drop["clips"] == entry.accuracy["int8"].clips
    assert drop["drop_clips"] == entry.accuracy["fp32"].clips_right - entry.accuracy["int8"].clips_right


def test_the_manifest_int8_accuracy_is_what_the_graph_computes(tiny_bundle, tiny_data_root):
    from karmma_edge.bundle import Bundle
    from karmma_edge.data.arrays import load_split
    from karmma_edge.edge_runtime.measure.evaluate import engine_logits

    bundle = Bundle(tiny_bundle)
    held_out = load_split(tiny_data_root, bundle.manifest.eval_split, bundle.manifest.spec, progress=False)
    for profile in bundle.profiles:
        with OnnxRuntimeEngine(bundle.artifact(profile, "int8"), threads=1, qdq_reference=True) as engine:
            verb, noun = engine_logits(engine, held_out)
        right = int(((verb.argmax(1) == held_out.verb) & (noun.argmax(1) == held_out.noun)).sum())
        assert right == bundle.manifest.profiles[profile].accuracy["int8"].clips_right, profile


@pytest.mark.parametrize("cpuinfo, arch, exact", [
    (EPYC_ROME, "x86_64", False), (SAPPHIRE_RAPIDS, "x86_64", True), (ORIN, "aarch64", True),
    ("flags\t: avx2 avx512f avx512bw\n", "x86_64", False),           # Skylake-SP: AVX-512 without VNNI
])
def test_which_processors_have_exact_int8_kernels(cpuinfo, arch, exact):
    support = int8_support(cpuinfo, arch)
    assert support.exact is exact
    assert support.isa.startswith(arch)
    if not exact:
        assert "VNNI" in support.reason


def test_serve_runs_fp32_where_the_int8_kernels_are_not_exact():
    inexact = int8_support(EPYC_ROME, "x86_64")
    exact = int8_support(SAPPHIRE_RAPIDS, "x86_64")
    cpu = ["CPUExecutionProvider"]
    precision, warning = serving_precision("onnxruntime", "int8", "auto", cpu, inexact)
    assert precision == "fp32" and "--cpu-int8 force" in warning
    assert serving_precision("onnxruntime", "int8", "force", cpu, inexact) == ("int8", None)
    assert serving_precision("onnxruntime", "int8", "auto", cpu, exact) == ("int8", None)
    assert serving_precision("onnxruntime", "int8", "auto", ["CUDAExecutionProvider", *cpu], inexact) == ("int8", None)
    assert serving_precision("tensorrt", "int8", "auto", cpu, inexact) == ("int8", None)
    assert serving_precision("onnxruntime", "fp32", "auto", cpu, inexact) == ("fp32", None)


def test_this_host_is_described():
    support = int8_support()
    assert isinstance(support, Int8Support) and support.arch
