"""Sensor source strings (DESIGN section 9): `file:PATH`, `cam:INDEX`, `rtsp://...`, `gst:PIPELINE`,
`mic:NAME`, `none`, parsed once so every later error can name the source the user typed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from karmma_edge.errors import ConfigError

CAMERA_KINDS = ("file", "cam", "rtsp", "gst", "none")
AUDIO_KINDS = ("file", "mic", "none")


@dataclass(frozen=True)
class SourceSpec:
    kind: str          # file | cam | rtsp | gst | mic | none
    target: str = field(repr=False)   # path, device index, URL, pipeline or device name ("" for none)
    text: str          # what the user wrote, credentials masked: for messages, logs and /healthz

    @property
    def is_file(self) -> bool:
        return self.kind == "file"


def redact(text: str) -> str:
    """`text` with the password of any `scheme://user:password@` URL in it replaced by ***."""
    return _CREDENTIALS.sub(r"\1***@", text)


# Up to the last @ before the path: a password may hold a raw @ (FFmpeg takes the last one too).
_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://[^/@\s:]*:)[^/\s]*@", re.I)


def parse_source(text: str, sensor: str) -> SourceSpec:
    """`sensor` is "rgb" (a camera) or "audio" (a microphone)."""
    allowed = CAMERA_KINDS if sensor == "rgb" else AUDIO_KINDS
    raw = text.strip()
    shown = redact(raw)
    if raw.lower() == "none" or raw == "":
        return SourceSpec("none", "", "none")
    if raw.startswith("rtsp://") or raw.startswith("rtsps://"):
        kind, target = "rtsp", raw
    elif ":" in raw:
        kind, target = raw.split(":", 1)
        kind = kind.lower()
    else:
        kind, target = "", raw
    if kind not in allowed or not target:
        examples = ("file:clip.mp4, cam:0, rtsp://host/stream, gst:'nvarguscamerasrc ! ... ! appsink', none"
                    if sensor == "rgb" else "file:sound.wav, mic:default, none")
        raise ConfigError(f"--{sensor} {shown!r} is not a valid {sensor} source; use one of: {examples}")
    if kind == "cam" and not target.isdigit():
        raise ConfigError(f"--{sensor} {shown!r}: cam: takes a device index such as cam:0")
    return SourceSpec(kind, target, shown)


def check_regular_file(path: Path, what: str) -> None:
    """A ConfigError unless `path` is a regular file (a FIFO or a device would block the reader)."""
    if not path.exists():
        raise ConfigError(f"{what}: {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"{what}: {path} is not a regular file; give a video or WAV file")
