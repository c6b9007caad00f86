"""The teacher's frozen per-modality extractors: raw sensor input -> a sequence of tokens [B, n, D].

Two sources (DESIGN section 1): a file the user brings (torch.export `.pt2`, TorchScript, or ONNX,
each taking the raw input of DESIGN section 5 and returning [B, n, D]), or networks pre-trained here
by `karmma-edge train extractors` as unimodal verb/noun classifiers on a larger pool of clips than
the student sees. Either way a `TokenSource` carries the checksum that keys the token cache.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
import torch
from torch import nn

from karmma_edge.bundle import sha256_file
from karmma_edge.errors import KarmmaError
from karmma_edge.inputs import InputSpec
from karmma_edge.profiles import MODALITIES
from karmma_edge.train.models import make_extractor, student_extractor
from karmma_edge.train.registry import EXTRACTORS as KIND
from karmma_edge.train.registry import ExtractorConfig, StudentConfig, list_models, model_config


# ------------------------------------------------------------------------------- trained extractors
# The registered extractor variants, for code that reads them by name (the registry is train.registry).
EXTRACTORS: Mapping[str, ExtractorConfig] = MappingProxyType({n: model_config(n) for n in list_models(KIND)})


def pretrain_config(name: str) -> ExtractorConfig | StudentConfig:
    """What `train extractors` pre-trains: a registered extractor model (the teacher's), or a student
    model, whose own encoders then initialise a student (reproduce's control)."""
    return model_config(name)


def build_extractor(cfg: ExtractorConfig | StudentConfig, modality: str) -> nn.Module:
    if isinstance(cfg, StudentConfig):
        return student_extractor(cfg, modality)
    return make_extractor(modality, cfg.spec, cfg.frame_widths, cfg.audio_widths, cfg.blocks)


class UnimodalClassifiers(nn.Module):
    """One extractor per modality, each with its own label heads (verb and noun, or action) on its
    mean-pooled tokens; the teacher's extractors, or a student's encoders."""

    def __init__(self, cfg: ExtractorConfig | StudentConfig, modalities: tuple[str, ...], outputs: dict[str, int]):
        super().__init__()
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        self.extractors = nn.ModuleDict({m: build_extractor(cfg, m) for m in self.modalities})
        self.heads = nn.ModuleDict({m: nn.Linear(e.dim, sum(outputs.values())) for m, e in self.extractors.items()})
        self.outputs = tuple(outputs)
        self.sizes = list(outputs.values())

    def forward(self, inputs: dict[str, torch.Tensor], present=None) -> dict[str, tuple[torch.Tensor, ...]]:
        return {m: torch.split(self.heads[m](self.extractors[m](inputs[m]).mean(dim=1)), self.sizes, dim=1)
                for m in self.modalities}


def extractor_file(run_dir: Path, modality: str) -> Path:
    return Path(run_dir) / f"extractor-{modality}.pt"


# ------------------------------------------------------------------------------------ token sources
class TokenSource:
    """A frozen extractor for one modality; `tokens(batch)` maps raw input to float32 [B, n, D]."""

    def __init__(self, modality: str, checksum: str, origin: str, spec: InputSpec | None = None):
        self.modality = modality
        self.checksum = checksum
        self.origin = origin             # what it was loaded from, for run.json and messages
        self.spec = spec                 # the input it reads (its own frames, size, stack, rate...)

    def tokens(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def module(self) -> nn.Module | None:
        """The torch module, for FLOP counting; None when the extractor is not torch."""
        return None

    def num_params(self) -> int:
        raise NotImplementedError


class TorchTokenSource(TokenSource):
    def __init__(self, modality: str, net: nn.Module, checksum: str, origin: str, spec: InputSpec | None = None):
        super().__init__(modality, checksum, origin, spec)
        self.net = net

    @torch.no_grad()
    def tokens(self, batch: np.ndarray) -> np.ndarray:
        return self.net(torch.from_numpy(np.array(batch))).float().numpy()

    def module(self) -> nn.Module:
        return self.net

    def num_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())


class OnnxTokenSource(TokenSource):
    def __init__(self, modality: str, path: Path, spec: InputSpec | None = None):
        super().__init__(modality, sha256_file(path), str(path), spec)
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.dtype = np.uint8 if inp.type == "tensor(uint8)" else np.float32
        self.path = Path(path)

    def tokens(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: batch.astype(self.dtype, copy=False)})[0]
        return np.asarray(out, dtype=np.float32)

    def num_params(self) -> int:
        import onnx

        model = onnx.load(str(self.path))
        return int(sum(np.prod(t.dims) for t in model.graph.initializer))


def load_extractor_file(path: Path, modality: str, spec: InputSpec | None = None) -> TokenSource:
    """A user's extractor: `.onnx` (ONNX Runtime), `.pt2` (torch.export), anything else TorchScript;
    `spec` is the input it declares (frames, size, sampling, flow stack, audio rate and window)."""
    path = Path(path)
    if not path.is_file():
        raise KarmmaError(f"extractor file {path} for {modality} does not exist")
    try:
        if path.suffix == ".onnx":
            return OnnxTokenSource(modality, path, spec)
        if path.suffix == ".pt2":
            net = torch.export.load(str(path)).module()
        else:
            net = torch.jit.load(str(path), map_location="cpu").eval()
    except KarmmaError:
        raise
    except Exception as e:  # each loader raises its own types for a file it cannot read
        raise KarmmaError(f"cannot load extractor {path} for {modality} ({type(e).__name__}: {str(e)[:200]}); "
                          "give a torch.export .pt2, a TorchScript file or an .onnx model") from None
    return TorchTokenSource(modality, net, sha256_file(path), str(path), spec)


def load_trained_extractors(run_dir: Path) -> tuple[dict[str, TokenSource], InputSpec]:
    """The frozen extractors of a `train extractors` run and the input spec they read."""
    from karmma_edge.train.runs import read_run_info

    info = read_run_info(run_dir)
    if info.get("kind") != "extractors":
        raise KarmmaError(f"{run_dir} is a {info.get('kind')} run, not a `train extractors` run")
    cfg = pretrain_config(info["model"])
    sources = {}
    for m in info["modalities"]:
        path = extractor_file(run_dir, m)
        if not path.is_file():
            raise KarmmaError(f"{path} is missing; rerun `karmma-edge train extractors --out {run_dir}`")
        net = build_extractor(cfg, m)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        for p in net.parameters():
            p.requires_grad_(False)
        sources[m] = TorchTokenSource(m, net.eval(), sha256_file(path), str(path), cfg.spec)
    return sources, cfg.spec


def student_encoders(run_dir: Path, model: str) -> dict[str, dict]:
    """The encoders a `train extractors` run pre-trained with `model: <the student's>`, as state dicts per
    modality, checked to be the student's own (`TrainConfig.init_extractors`, reproduce's control)."""
    from karmma_edge.errors import ConfigError
    from karmma_edge.train.runs import read_run_info

    where = f"init_extractors: {run_dir}"
    fix = f"pre-train the student's own encoders with `karmma-edge train extractors` and `model: {model}`"
    info = read_run_info(run_dir)
    if info.get("kind") != "extractors":
        raise ConfigError(f"{where} is a {info.get('kind')} run, not a `train extractors` run; {fix}")
    if info.get("model") != model or InputSpec.from_dict(info["input_spec"]) != model_config(model).spec:
        raise ConfigError(f"{where} pre-trained model {info.get('model')!r}, but the student is {model!r}: "
                          f"its encoders must have the student's layout and input spec; {fix}")
    states = {}
    for m in info["modalities"]:
        path = extractor_file(run_dir, m)
        try:
            states[m] = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as e:
            raise ConfigError(f"{where}: cannot read {path} ({type(e).__name__}: {str(e)[:200]}); {fix}") from None
    return states


def load_student_encoders(student: nn.Module, states: dict[str, dict], run_dir: Path) -> None:
    """Initialise the student's extractors from `student_encoders`; they train on with the rest."""
    from karmma_edge.errors import ConfigError

    missing = [m for m in student.modalities if m not in states]
    if missing:
        raise ConfigError(f"init_extractors: {run_dir} has no {'+'.join(missing)} encoder (it pre-trained "
                          f"{'+'.join(states)}); pre-train the student's encoders on its modalities")
    for m in student.modalities:
        try:
            student.extractors[m].load_state_dict(states[m])
        except RuntimeError as e:
            raise ConfigError(f"init_extractors: {run_dir}'s {m} encoder does not fit the student's "
                              f"({str(e)[:200]}); pre-train it again with the student's model") from None


def load_source(origin: Path, modality: str, spec: InputSpec | None = None) -> TokenSource:
    """A source again from the file it was loaded from (a trained run's extractor or a user's file)."""
    origin = Path(origin)
    if origin == extractor_file(origin.parent, modality) and (origin.parent / "run.json").is_file():
        return load_trained_extractors(origin.parent)[0][modality]
    return load_extractor_file(origin, modality, spec)


def config_dict(name: str) -> dict:
    return asdict(pretrain_config(name))
