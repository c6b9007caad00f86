"""Test media for the runtime tests, made from the tiny dataset's frames (no generator, no torch):
an MJPG .avi of real dataset frames and a WAV of a rhythmic tone, the video shorter than the WAV."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

VIDEO_FPS = 25.0


@dataclass(frozen=True)
class Media:
    video: Path
    wav: Path
    video_s: float
    wav_s: float


def dataset_frames(data_root: Path, count: int) -> list[np.ndarray]:
    """`count` BGR frames from the dataset's RGB JPEG folders, cycling through videos."""
    files = sorted(Path(data_root).glob("P*/rgb_frames/*/frame_*.jpg"))
    if not files:
        raise FileNotFoundError(f"no rgb_frames JPEGs under {data_root}")
    return [cv2.imread(str(files[i % len(files)])) for i in range(count)]


def write_video(path: Path, frames: list[np.ndarray], fps: float = VIDEO_FPS) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def write_wav(path: Path, seconds: float, rate: int, channels: int = 1) -> Path:
    """A 440 Hz tone pulsed at 4 Hz over quiet noise, 16-bit PCM (it need not be classifiable)."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    x = 0.4 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 4 * t) > 0) + 0.02 * rng.standard_normal(t.size)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def make_media(data_root: Path, out: Path, video_s: float = 2.0, wav_s: float = 5.0,
               rate: int = 24000, channels: int = 1) -> Media:
    out.mkdir(parents=True, exist_ok=True)
    video = write_video(out / "clip.avi", dataset_frames(data_root, int(video_s * VIDEO_FPS)))
    wav = write_wav(out / f"sound-{rate}-{channels}ch.wav", wav_s, rate, channels)
    return Media(video, wav, video_s, wav_s)


def test_media_is_decodable_and_video_shorter_than_wav(tiny_data_root: Path, tmp_path: Path) -> None:
    media = make_media(tiny_data_root, tmp_path)
    cap = cv2.VideoCapture(str(media.video))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == int(media.video_s * VIDEO_FPS)
    with wave.open(str(media.wav)) as w:
        assert w.getnframes() / w.getframerate() > n / VIDEO_FPS
