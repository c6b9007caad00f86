"""WAV files as the model hears them: mono float32 at the model's sample rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from karmma_edge.data.audio import resample
from karmma_edge.edge_runtime.sources import check_regular_file
from karmma_edge.errors import ConfigError


def load_wav(path: Path, sample_rate: int) -> np.ndarray:
    """The whole file, channels averaged to mono and resampled to `sample_rate`.

    libsndfile (through soundfile) reads every WAV flavour: 8/16/24/32-bit PCM, float, WAVE_FORMAT_EXTENSIBLE.
    Integer PCM is scaled as the dataset reader scales it (16-bit: x / 32768), and resampling reuses
    the dataset reader's resampler (OpenCV area averaging down, linear interpolation up), so the
    device hears exactly what training audio went through.
    """
    path = Path(path)
    what = f"audio source file:{path}"
    check_regular_file(path, what)
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        detail = str(e) or type(e).__name__
        raise ConfigError(f"{what} is not a readable WAV file ({detail}); give a PCM or float WAV") from None
    samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if samples.size == 0:
        raise ConfigError(f"{what} holds no samples; give a WAV file with sound in it")
    if rate != sample_rate:
        samples = resample(samples, int(round(samples.size * sample_rate / rate)))
    return np.ascontiguousarray(samples, dtype=np.float32)
