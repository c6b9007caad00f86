"""Audio from `EPIC_audio.hdf5` (one 1-D dataset per video) or one WAV per video, windowed and resampled."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import cv2
import numpy as np

from karmma_edge.data.frames import MissingData

AUDIO_HDF5 = "EPIC_audio.hdf5"
DEFAULT_RATE = 24000   # EPIC audio baselines extract mono 24 kHz


def resample(x: np.ndarray, samples: int) -> np.ndarray:
    """Resample a 1-D signal to `samples` points.

    cv2.resize keeps this to numpy + OpenCV (no scipy on the device): INTER_AREA averages the
    source samples under each output sample, a box low-pass that limits aliasing when
    downsampling; INTER_LINEAR interpolates when upsampling.
    """
    if x.shape[0] == samples:
        return x.astype(np.float32, copy=False)
    interp = cv2.INTER_AREA if x.shape[0] > samples else cv2.INTER_LINEAR
    return cv2.resize(x.astype(np.float32)[None, :], (samples, 1), interpolation=interp)[0]


class AudioStore:
    """Finds a video's audio in the HDF5 file or in `<root>/audio/<vid>.wav` / `<root>/<pid>/audio/<vid>.wav`."""

    def __init__(self, root: Path, sample_rate: int | None = None) -> None:
        self.root = Path(root)
        self.h5_path = self.root / AUDIO_HDF5
        self.rate_override = sample_rate
        self._h5 = None
        self._pid = -1
        self._wav_cache: dict[str, tuple[np.ndarray, int]] = {}

    def available(self) -> bool:
        return self.h5_path.is_file() or (self.root / "audio").is_dir() or any(self.root.glob("*/audio/*.wav"))

    def _file(self):
        import h5py  # imported here so frame-only use never loads HDF5

        if self._pid != os.getpid():   # HDF5 handles must not cross fork()
            self._h5, self._pid = h5py.File(self.h5_path, "r"), os.getpid()
        return self._h5

    def _wav(self, pid: str, vid: str) -> tuple[np.ndarray, int, str] | None:
        for path in (self.root / "audio" / f"{vid}.wav", self.root / pid / "audio" / f"{vid}.wav"):
            if path.is_file():
                if vid not in self._wav_cache:
                    self._wav_cache[vid] = _read_wav(path)
                return (*self._wav_cache[vid], str(path))
        return None

    def rate(self, pid: str, vid: str) -> int:
        return self._locate(pid, vid)[1]

    def _locate(self, pid: str, vid: str):
        if self.h5_path.is_file():
            f = self._file()
            if vid in f:
                ds = f[vid]
                rate = self.rate_override or int(ds.attrs.get("sample_rate", f.attrs.get("sample_rate", DEFAULT_RATE)))
                return ds, rate, f"{self.h5_path}:{vid}"
        wav = self._wav(pid, vid)
        if wav is not None:
            data, rate, where = wav
            return data, self.rate_override or rate, where
        where = self.h5_path if self.h5_path.is_file() else self.root / "audio" / f"{vid}.wav"
        raise MissingData(str(where), f"no audio for video {vid}")

    def window(self, pid: str, vid: str, first: int, last: int) -> np.ndarray:
        """Samples [first, last) at the file's rate; only indices outside the recording become zeros."""
        data, _, where = self._locate(pid, vid)
        n = int(data.shape[0])
        if len(data.shape) != 1:
            raise MissingData(where, f"audio must be 1-D mono, found shape {tuple(data.shape)}")
        out = np.zeros(last - first, np.float32)
        lo, hi = max(first, 0), min(last, n)
        if hi > lo:
            out[lo - first:hi - first] = data[lo:hi]
        return out


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
    elif width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise MissingData(str(path), f"unsupported WAV sample width {width} bytes")
    if channels > 1:   # the models take mono: average the channels
        x = x.reshape(-1, channels).mean(axis=1)
    return x, rate
