"""Student models: blocks, extractors, fusion, the student, and the registry of buildable variants.

Read top to bottom: conv blocks and the temporal shift, the per-modality extractors, the fusion
block with learned tokens for missing modalities, and the student; the registered variants, each beside the InputSpec
(frames, rates, mel settings, mean and std) it expects, are in `train.registry`.
"""

from __future__ import annotations

from dataclasses import asdict
from types import MappingProxyType
from typing import Mapping

import torch
from torch import nn

from karmma_edge.inputs import InputSpec
from karmma_edge.profiles import MODALITIES
from karmma_edge.train.frontends import FrameNormalizer, LogMel
from karmma_edge.train import registry
from karmma_edge.train.registry import STUDENT, StudentConfig, list_models


# ----------------------------------------------------------------------------------------- blocks
def conv_bn_relu(cin: int, cout: int, stride: int = 1, leaky_slope: float = 0.0) -> nn.Sequential:
    """Dense 3x3 convolution: the op INT8 kernels speed up most (DESIGN section 6).

    `leaky_slope > 0` uses LeakyReLU: with symmetric int8 activations (zero point 0) ONNX Runtime
    cannot fold a ReLU into the next Q and runs it in FP32 between a DQ and a Q, while LeakyReLU has
    an int8 kernel (QLinearLeakyRelu); TensorRT fuses either into the convolution.
    """
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(leaky_slope, inplace=True) if leaky_slope > 0 else nn.ReLU(inplace=True),
    )


class TemporalShift(nn.Module):
    """Shift a fraction of channels one step forward and one step back in time (TSM).

    Gives 2D convolutions temporal context at no FLOP cost, instead of 3D convolutions.
    """

    def __init__(self, frames: int, fold_div: int = 8):
        super().__init__()
        self.frames = frames
        self.fold_div = fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bt, c, h, w = x.shape
        x = x.reshape(bt // self.frames, self.frames, c, h, w)
        fold = c // self.fold_div
        zeros = torch.zeros_like(x[:, :1, :fold])
        back = torch.cat([x[:, 1:, :fold], zeros], dim=1)              # frame t sees t+1
        fwd = torch.cat([zeros, x[:, :-1, fold: 2 * fold]], dim=1)      # frame t sees t-1
        out = torch.cat([back, fwd, x[:, :, 2 * fold:]], dim=2)
        return out.reshape(bt, c, h, w)


class ShiftConv(nn.Module):
    def __init__(self, channels: int, frames: int, leaky_slope: float = 0.0):
        super().__init__()
        self.shift = TemporalShift(frames)
        self.conv = conv_bn_relu(channels, channels, leaky_slope=leaky_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.shift(x))


# ------------------------------------------------------------------------------------- extractors
class FrameExtractor(nn.Module):
    """uint8 frames [B,T,H,W,C] -> one token per frame [B,T,D]: 2D convs with temporal shifts."""

    def __init__(self, channels_in: int, widths: tuple[int, ...], spec: InputSpec, mean, std, blocks: int = 1,
                 leaky_slope: float = 0.0):
        super().__init__()
        self.frames = spec.frames
        self.norm = FrameNormalizer(mean, std)
        layers: list[nn.Module] = [conv_bn_relu(channels_in, widths[0], stride=2, leaky_slope=leaky_slope)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [conv_bn_relu(cin, cout, stride=2, leaky_slope=leaky_slope),
                       *[ShiftConv(cout, spec.frames, leaky_slope) for _ in range(blocks)]]
        self.body = nn.Sequential(*layers)
        self.dim = widths[-1]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.body(self.norm(frames))                      # [B*T, D, h, w]
        x = x.mean(dim=(2, 3))
        return x.reshape(-1, self.frames, self.dim)


class AudioExtractor(nn.Module):
    """PCM [B,S] -> log-mel -> 2D CNN -> tokens along time [B,n,D]."""

    def __init__(self, widths: tuple[int, ...], spec: InputSpec, blocks: int = 1, leaky_slope: float = 0.0):
        super().__init__()
        self.logmel = LogMel(spec)
        self.norm = nn.BatchNorm2d(1)        # learned standardisation of the log-mel
        layers: list[nn.Module] = [conv_bn_relu(1, widths[0], stride=2, leaky_slope=leaky_slope)]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [conv_bn_relu(cin, cout, stride=2, leaky_slope=leaky_slope),
                       *[conv_bn_relu(cout, cout, leaky_slope=leaky_slope) for _ in range(blocks)]]
        self.body = nn.Sequential(*layers)
        self.dim = widths[-1]
        with torch.no_grad():
            probe = self.body(torch.zeros(1, 1, spec.n_mels, self._frames(spec)))
        self.tokens = probe.shape[-1]

    @staticmethod
    def _frames(spec: InputSpec) -> int:
        return (spec.audio_samples - spec.n_fft) // spec.hop_length + 1

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.body(self.norm(self.logmel(audio)))          # [B, D, f, t]
        return x.mean(dim=2).transpose(1, 2)                  # [B, t, D]


def make_extractor(modality: str, spec: InputSpec, frame_widths: tuple[int, ...], audio_widths: tuple[int, ...],
                   blocks: int = 1, leaky_slope: float = 0.0) -> nn.Module:
    """One modality's encoder, raw input -> tokens [B, n, D]: the teacher's and the student's alike."""
    if modality == "rgb":
        return FrameExtractor(3, frame_widths, spec, spec.rgb_mean, spec.rgb_std, blocks, leaky_slope)
    if modality == "flow":
        return FrameExtractor(2, frame_widths, spec, (spec.flow_mean,) * 2, (spec.flow_std,) * 2, blocks, leaky_slope)
    return AudioExtractor(audio_widths, spec, blocks, leaky_slope)


def student_extractor(cfg: StudentConfig, modality: str) -> nn.Module:
    return make_extractor(modality, cfg.spec, cfg.frame_widths, cfg.audio_widths, leaky_slope=cfg.leaky_slope)


# ----------------------------------------------------------------------------------------- fusion
class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.scale = (dim // heads) ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.ReLU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Fusion(nn.Module):
    """Per-modality embedding + modality token + per-position tokens, [CLS], transformer, heads.

    A missing modality's tokens are replaced by its learned tokens (never zeros). Predictions of the
    [CLS] token and of each modality's pooled tokens are averaged.
    """

    def __init__(self, token_dims: dict[str, tuple[int, int]], dim: int, depth: int, heads: int,
                 outputs: dict[str, int]):
        super().__init__()
        self.modalities = tuple(m for m in MODALITIES if m in token_dims)
        self.outputs = tuple(outputs)
        self.embed = nn.ModuleDict({m: nn.Linear(d, dim) for m, (_, d) in token_dims.items()})
        self.modality_token = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(1, 1, dim) * 0.02) for m in self.modalities})
        self.position_tokens = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(1, n, dim) * 0.02) for m, (n, _) in token_dims.items()})
        self.missing_tokens = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(1, n, dim) * 0.02) for m, (n, _) in token_dims.items()})
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.layers = nn.Sequential(*[TransformerLayer(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        for name, classes in outputs.items():      # verb_head and noun_head, or action_head
            setattr(self, f"{name}_head", nn.Linear(dim, classes))

    def tokens_for(self, m: str, features: torch.Tensor | None, batch: int,
                   present: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of modality m; `present` [B] bool selects per sample between real and learned."""
        learned = self.missing_tokens[m].expand(batch, -1, -1)
        if features is None:
            return learned
        real = self.embed[m](features) + self.modality_token[m] + self.position_tokens[m]
        if present is None:
            return real
        return torch.where(present.view(-1, 1, 1), real, learned)

    def forward(self, tokens: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Logits of each label head (`self.outputs` order): (verb, noun) or (action,)."""
        batch = tokens[0].shape[0]
        x = torch.cat([self.cls.expand(batch, -1, -1), *tokens], dim=1)
        x = self.norm(self.layers(x))
        pooled = [x[:, 0]]
        start = 1
        for t in tokens:
            pooled.append(x[:, start: start + t.shape[1]].mean(dim=1))
            start += t.shape[1]
        z = torch.stack(pooled, dim=1)                        # [B, 1+M, dim]
        return tuple(getattr(self, f"{name}_head")(z).mean(dim=1) for name in self.outputs)


# ---------------------------------------------------------------------------------------- student
class Student(nn.Module):
    """Small per-modality extractors + compact fusion; takes any subset of modalities.

    `forward(inputs)` takes a dict of raw sensor tensors; a modality absent from the dict is replaced
    by its learned tokens. `present` ([B, M] bool, training only) drops modalities per sample.
    """

    def __init__(self, cfg: StudentConfig, outputs: dict[str, int], modalities: tuple[str, ...] = MODALITIES):
        super().__init__()
        spec = cfg.spec
        self.spec = spec
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        extractors = {m: student_extractor(cfg, m) for m in self.modalities}
        self.extractors = nn.ModuleDict(extractors)
        token_dims = {m: (spec.frames if m != "audio" else e.tokens, e.dim) for m, e in extractors.items()}
        self.fusion = Fusion(token_dims, cfg.fusion_dim, cfg.fusion_depth, cfg.fusion_heads, outputs)
        self.outputs = self.fusion.outputs

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor | None = None):
        batch = next(iter(inputs.values())).shape[0]
        tokens = []
        for i, m in enumerate(self.modalities):
            feats = self.extractors[m](inputs[m]) if m in inputs else None
            mask = None if present is None else present[:, i]
            tokens.append(self.fusion.tokens_for(m, feats, batch, mask))
        return self.fusion(tokens)


# The registered variants, for code that reads them by name (the registry is train.registry).
MODELS: Mapping[str, StudentConfig] = MappingProxyType({n: registry.model_config(n) for n in list_models(STUDENT)})


def model_config(name: str) -> StudentConfig:
    return registry.model_config(name, STUDENT)


def create_student(name: str, outputs: dict[str, int], modalities=MODALITIES) -> Student:
    """`outputs`: label head -> classes, from `metrics.label_heads` of the dataset's classes."""
    return Student(model_config(name), outputs, modalities)


def config_dict(name: str) -> dict:
    return asdict(model_config(name))
