"""Preprocessing that lives inside the graph (DESIGN section 5): raw sensor data in, features out.

Written in plain torch (no torchaudio: it does not install beside this torch) so that it exports to
a handful of standard ONNX ops that TensorRT runs; quantization leaves these modules in FP32.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from karmma_edge.inputs import InputSpec


class FrameNormalizer(nn.Module):
    """uint8 [B,T,H,W,C] -> float [B*T,C,H,W], scaled to 0..1 and standardised."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        c = len(mean)
        # Folded into one multiply-add: x * scale + shift == (x / 255 - mean) / std.
        scale = torch.tensor([1.0 / (255.0 * s) for s in std])
        shift = torch.tensor([-m / s for m, s in zip(mean, std)])
        # Equal statistics per channel become scalars: ONNX Runtime runs the INT8 graph's convs in NHWC
        # and moves this multiply-add there, where a per-channel broadcast over the last axis (C=3)
        # cost ~20 ms per clip here; a scalar broadcast is a plain vectorised loop.
        uniform = bool((scale == scale[0]).all() and (shift == shift[0]).all())
        scale, shift = (scale[0], shift[0]) if uniform else (scale.view(1, c, 1, 1), shift.view(1, c, 1, 1))
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, h, w, c = frames.shape
        # Cast first: TensorRT's ONNX parser takes uint8 only as a graph input or output, so the raw
        # frames must not reach a Reshape or Transpose as uint8 (issue 13). Same values either way.
        x = frames.to(torch.float32).reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        return x * self.scale + self.shift


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, f_min: float, f_max: float) -> np.ndarray:
    """HTK-scale triangular mel filters, [n_freqs, n_mels] (what torchaudio's melscale_fbanks gives)."""
    n_freqs = n_fft // 2 + 1
    freqs = np.linspace(0, sample_rate / 2, n_freqs)

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    mel_points = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    hz = mel_to_hz(mel_points)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None, :] - lower) / (centre - lower)
    down = (upper - freqs[None, :]) / (upper - centre)
    fb = np.maximum(0.0, np.minimum(up, down))
    return fb.T.astype(np.float32)


class LogMel(nn.Module):
    """Mono PCM float [B,S] -> log-mel [B,1,n_mels,frames].

    The STFT is a Conv1d with fixed cosine and sine kernels (Hann-windowed, no centre padding), so the
    graph needs no STFT operator and TensorRT runs it as an ordinary convolution.
    """

    def __init__(self, spec: InputSpec):
        super().__init__()
        n_fft, hop = spec.n_fft, spec.hop_length
        n_freqs = n_fft // 2 + 1
        window = 0.5 - 0.5 * np.cos(2 * math.pi * np.arange(n_fft) / n_fft)
        k = np.arange(n_freqs)[:, None] * np.arange(n_fft)[None, :] * 2 * math.pi / n_fft
        kernels = np.concatenate([np.cos(k) * window, -np.sin(k) * window]).astype(np.float32)
        self.stft = nn.Conv1d(1, 2 * n_freqs, n_fft, stride=hop, bias=False)
        self.stft.weight.data.copy_(torch.from_numpy(kernels[:, None, :]))
        self.stft.weight.requires_grad_(False)
        fb = mel_filterbank(n_fft, spec.n_mels, spec.sample_rate, spec.f_min, spec.f_max)
        self.register_buffer("mel", torch.from_numpy(fb.T.copy()))       # [n_mels, n_freqs]
        self.n_freqs = n_freqs
        self.eps = spec.log_eps

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = self.stft(audio.unsqueeze(1))                              # [B, 2F, frames]
        re, im = spec[:, : self.n_freqs], spec[:, self.n_freqs:]
        power = re * re + im * im
        mel = torch.matmul(self.mel, power)                               # [B, n_mels, frames]
        return torch.log(mel + self.eps).unsqueeze(1)
