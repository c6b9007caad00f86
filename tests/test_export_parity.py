"""ONNX Runtime FP32 matches torch per profile within 1e-4 on logits; absent modalities are constants."""

import numpy as np
import onnxruntime as ort
import torch

from karmma_edge.bundle import Bundle
from karmma_edge.quantize.export import ProfileModel, example_inputs


def test_fp32_graphs_match_torch(tiny_run, tiny_bundle):
    from karmma_edge.train.runs import load_student

    student, _ = load_student(tiny_run)
    bundle = Bundle(tiny_bundle)
    for profile in bundle.profiles:
        model = ProfileModel(student, profile).eval()
        inputs = example_inputs(student, model.modalities, batch=3, seed=7)
        with torch.no_grad():
            want = [t.numpy() for t in model(*inputs)]
        sess = ort.InferenceSession(str(bundle.artifact(profile, "fp32")), providers=["CPUExecutionProvider"])
        got = sess.run(["verb", "noun"], {m: t.numpy() for m, t in zip(model.modalities, inputs)})
        for w, g in zip(want, got):
            assert np.abs(w - g).max() <= 1e-4, profile
