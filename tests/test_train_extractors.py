"""Extractor files of each kind load and give the module's tokens; tokens are cached, not recomputed."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from karmma_edge.train.extractors import (EXTRACTORS, ExtractorConfig, TorchTokenSource,  # noqa: E402
                                          build_extractor, load_extractor_file)
from karmma_edge.train.tokens import split_tokens  # noqa: E402

CFG = EXTRACTORS["teacher-xs"]
SMALL = ExtractorConfig((4, 8), (4, 8), 1, CFG.spec)      # files for the loader tests: small, still real


def frames(batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (batch, *CFG.spec.input_shape("flow")), dtype=torch.uint8, generator=g)


@pytest.fixture(scope="module")
def flow_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_extractor(SMALL, "flow").eval()


@pytest.fixture(scope="module")
def flow_program(flow_net):
    batch = torch.export.Dim("B", min=1, max=64)
    return torch.export.export(flow_net, (frames(),), dynamic_shapes=({0: batch},))


def test_torch_export_file(flow_net, flow_program, tmp_path):
    path = tmp_path / "flow.pt2"
    torch.export.save(flow_program, path)
    source = load_extractor_file(path, "flow")
    x = frames(3)
    np.testing.assert_allclose(source.tokens(x.numpy()), flow_net(x).detach().numpy(), atol=1e-5)
    assert source.num_params() == sum(p.numel() for p in flow_net.parameters())


def test_torchscript_file(flow_net, tmp_path):
    path = tmp_path / "flow.ts"
    torch.jit.save(torch.jit.trace(flow_net, (frames(),)), path)
    source = load_extractor_file(path, "flow")
    x = frames(3)
    np.testing.assert_allclose(source.tokens(x.numpy()), flow_net(x).detach().numpy(), atol=1e-5)


def test_onnx_file(flow_net, flow_program, tmp_path):
    path = tmp_path / "flow.onnx"
    torch.onnx.export(flow_program, dynamo=True, input_names=["flow"], verbose=False).save(str(path))
    source = load_extractor_file(path, "flow")
    x = frames(3)
    np.testing.assert_allclose(source.tokens(x.numpy()), flow_net(x).detach().numpy(), atol=1e-4)
    assert source.num_params() > 0


def test_unreadable_file_is_a_user_error(tmp_path):
    from karmma_edge.errors import KarmmaError

    bad = tmp_path / "flow.pt2"
    bad.write_bytes(b"not a program")
    with pytest.raises(KarmmaError, match="flow.pt2"):
        load_extractor_file(bad, "flow")


class CountingSource(TorchTokenSource):
    """A real extractor that records how often it ran."""

    calls = 0

    def tokens(self, batch):
        CountingSource.calls += 1
        return super().tokens(batch)


def test_tokens_are_computed_once(tiny_dataset, tmp_path, flow_net):
    source = CountingSource("flow", flow_net, "checksum-a", "test")
    first = split_tokens({"flow": source}, tiny_dataset, "validation", "epic100", CFG.spec, tmp_path, progress=False)
    calls = CountingSource.calls
    assert calls > 0 and first["flow"].shape[0] == 24
    again = split_tokens({"flow": source}, tiny_dataset, "validation", "epic100", CFG.spec, tmp_path, progress=False)
    assert CountingSource.calls == calls                      # read from the cache, extractor not run
    np.testing.assert_array_equal(first["flow"], again["flow"])
    other = CountingSource("flow", flow_net, "checksum-b", "test")   # another extractor: new tokens
    split_tokens({"flow": other}, tiny_dataset, "validation", "epic100", CFG.spec, tmp_path, progress=False)
    assert CountingSource.calls > calls


def test_modalities_at_one_spec_share_one_decode_of_the_split(tiny_dataset, tmp_path, flow_net):
    """The clips are decoded once for every extractor reading the same spec, into the cache that a
    student's training at that spec reads too (no second decode)."""
    from karmma_edge.data.arrays import load_split

    torch.manual_seed(0)
    sources = {"rgb": TorchTokenSource("rgb", build_extractor(SMALL, "rgb").eval(), "checksum-rgb", "test"),
               "flow": TorchTokenSource("flow", flow_net, "checksum-flow", "test")}
    tokens = split_tokens(sources, tiny_dataset, "validation", "epic100", CFG.spec, tmp_path, progress=False)
    assert set(tokens) == {"rgb", "flow"}
    decoded = sorted(p.name for p in tmp_path.glob("validation-*"))
    assert len(decoded) == 1
    load_split(tiny_dataset, "validation", CFG.spec, "epic100", ("rgb", "flow"), tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.glob("validation-*")) == decoded


def test_teacher_on_user_files(tiny_dataset, tmp_path):
    """A teacher trained on extractors the user brings (TorchScript here), then evaluated."""
    from karmma_edge.train.config import TeacherConfig
    from karmma_edge.train.evaluate import evaluate_run
    from karmma_edge.train.teacher import train_teacher

    files = {}
    torch.manual_seed(0)
    for m in ("rgb", "flow", "audio"):
        net = build_extractor(SMALL, m).eval()
        shape = (2, *CFG.spec.input_shape(m))
        x = torch.zeros(shape, dtype=torch.uint8) if m != "audio" else torch.zeros(shape)
        files[m] = tmp_path / f"{m}.ts"
        torch.jit.save(torch.jit.trace(net, (x,)), files[m])
    cfg = TeacherConfig(data=tiny_dataset, extractor_files=files, spec_model="student-xs", fusion_dim=32,
                        fusion_depth=1, fusion_heads=2, epochs=1, batch_size=16, threads=1)
    info = train_teacher(cfg, tmp_path / "teacher", progress=False)
    assert info["extractors"]["audio"]["origin"] == str(files["audio"])
    result = evaluate_run(tmp_path / "teacher", draws=2, progress=False, split="validation")
    assert result["subsets"]["rgb+flow+audio"]["action_top1"] == pytest.approx(info["metrics"]["action_top1"])


class Pooled(torch.nn.Module):
    """A stand-in for a TSN/TSM backbone at its own spec: uint8 [B,T,H,W,C] -> [B,T,D], one token per
    frame from a strided convolution over every channel (so each flow pair of the stack matters)."""

    def __init__(self, channels: int, dim: int = 6):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, dim, 8, stride=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = x.shape
        y = self.conv(x.reshape(b * t, h, w, c).permute(0, 3, 1, 2).float() / 255.0)
        return y.mean(dim=(2, 3)).reshape(b, t, -1)


def test_teacher_reads_each_extractor_at_its_own_spec(tiny_dataset, tmp_path):
    """Issue 16, acceptance 4: TorchScript extractors at 112 px, 8 frames and a 5-pair flow stack
    (the student reads 32 px, 4 frames, one pair); the cached tokens equal a direct call."""
    from karmma_edge.data import open_dataset
    from karmma_edge.data.frames import resize
    from karmma_edge.train.config import ExtractorFile, TeacherConfig
    from karmma_edge.train.evaluate import evaluate_run
    from karmma_edge.train.teacher import train_teacher

    torch.manual_seed(0)
    files = {}
    for m, channels in (("rgb", 3), ("flow", 10)):
        files[m] = tmp_path / f"{m}.ts"
        torch.jit.save(torch.jit.script(Pooled(channels).eval()), files[m])
    declared = {"rgb": ExtractorFile(path=files["rgb"], frames=8, size=112),
                "flow": ExtractorFile(path=files["flow"], frames=8, size=112, flow_stack=5)}
    cfg = TeacherConfig(data=tiny_dataset, extractor_files=declared, spec_model="student-xs", fusion_dim=32,
                        fusion_depth=1, fusion_heads=2, epochs=1, batch_size=16, threads=1,
                        cache_dir=tmp_path / "cache")
    info = train_teacher(cfg, tmp_path / "teacher", progress=False)
    assert info["token_dims"] == {"rgb": [8, 6], "flow": [8, 6]}
    assert info["extractors"]["flow"]["input_spec"]["flow_stack"] == 5

    student_spec = info["input_spec"]
    assert (student_spec["frames"], student_spec["height"]) == (4, 32)
    tokens = {p.name.split("-")[1]: np.load(p) for p in (tmp_path / "cache" / "tokens").glob("train-*.npy")}
    assert set(tokens) == {"rgb", "flow"}
    for m, f in declared.items():
        spec = f.spec(CFG.spec)
        ds = open_dataset(tiny_dataset, "train", spec)
        net = torch.jit.load(str(files[m]))
        # In the batches the cache was computed in (32 clips), so both sides run the same kernels.
        for start in range(0, len(ds), 32):
            x = np.stack([ds.load(i).inputs[m] for i in range(start, min(start + 32, len(ds)))])
            assert x.shape[1:] == ((8, 112, 112, 3) if m == "rgb" else (8, 112, 112, 10))
            with torch.no_grad():
                direct = net(torch.from_numpy(x)).numpy()
            np.testing.assert_array_equal(tokens[m][start:start + 32], direct)
    # The stack holds consecutive flow frames: pair k of sampled frame t is flow frame f_t + k.
    ds = open_dataset(tiny_dataset, "train", declared["flow"].spec(CFG.spec))
    clip, seg = ds.load(5), ds.segments[5]
    u, v = ds.frames.flow(seg.participant_id, seg.video_id, int(clip.flow_frames[0]) + 2)
    np.testing.assert_array_equal(clip.inputs["flow"][0, ..., 4], resize(u, 112, 112))
    np.testing.assert_array_equal(clip.inputs["flow"][0, ..., 5], resize(v, 112, 112))

    result = evaluate_run(tmp_path / "teacher", draws=2, progress=False, split="validation")
    assert result["subsets"]["rgb+flow"]["action_top1"] == pytest.approx(info["metrics"]["action_top1"])


def test_extractor_files_declare_their_spec_in_yaml(tmp_path):
    from karmma_edge.errors import ConfigError
    from karmma_edge.train.config import ExtractorFile, TeacherConfig, load_config

    path = tmp_path / "teacher.yaml"
    path.write_text("extractor_files:\n  rgb: nets/rgb.ts\n"
                    "  flow: {path: nets/flow.ts, frames: 8, size: 112, flow_stack: 5, sampling: dense}\n")
    cfg = load_config(path, TeacherConfig)
    assert cfg.extractor_files["rgb"] == tmp_path / "nets" / "rgb.ts"
    flow = cfg.extractor_files["flow"]
    assert isinstance(flow, ExtractorFile) and flow.path == tmp_path / "nets" / "flow.ts"
    spec = flow.spec(CFG.spec)
    assert (spec.frames, spec.height, spec.width, spec.flow_stack, spec.sampling) == (8, 112, 112, 5, "dense")
    assert spec.sample_rate == CFG.spec.sample_rate and spec.input_shape("flow") == (8, 112, 112, 10)
    path.write_text("extractor_files:\n  flow: {path: f.ts, flow_stack: 0}\n")
    with pytest.raises(ConfigError, match="extractor_files.flow"):
        load_config(path, TeacherConfig)
