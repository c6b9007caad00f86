"""WAV files as the model hears them: mono float32 at the model's sample rate."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from karmma_edge.data.audio import _read_wav, resample
from karmma_edge.data.frames import MissingData
from karmma_edge.errors import ConfigError


def load_wav(path: Path, sample_rate: int) -> np.ndarray:
    """The whole file, channels averaged to mono and resampled to `sample_rate`.

    Resampling reuses the dataset reader's resampler (OpenCV area averaging down, linear
    interpolation up) so the device hears exactly what training audio went through.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"audio source file:{path} does not exist")
    try:
        samples, rate = _read_wav(path)
    except (wave.Error, EOFError, MissingData) as e:
        raise ConfigError(f"audio source file:{path} is not a readable PCM WAV file ({e})") from None
    if samples.size == 0:
        raise ConfigError(f"audio source file:{path} holds no samples")
    if rate != sample_rate:
        samples = resample(samples, int(round(samples.size * sample_rate / rate)))
    return samples.astype(np.float32, copy=False)
