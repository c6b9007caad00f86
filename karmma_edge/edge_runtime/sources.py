"""Sensor source strings (DESIGN section 9): `file:PATH`, `cam:INDEX`, `rtsp://...`, `gst:PIPELINE`,
`mic:NAME`, `none`, parsed once so every later error can name the source the user typed."""

from __future__ import annotations

from dataclasses import dataclass

from karmma_edge.errors import ConfigError

CAMERA_KINDS = ("file", "cam", "rtsp", "gst", "none")
AUDIO_KINDS = ("file", "mic", "none")


@dataclass(frozen=True)
class SourceSpec:
    kind: str          # file | cam | rtsp | gst | mic | none
    target: str        # path, device index, URL, pipeline or device name ("" for none)
    text: str          # what the user wrote, for messages

    @property
    def is_file(self) -> bool:
        return self.kind == "file"


def parse_source(text: str, sensor: str) -> SourceSpec:
    """`sensor` is "rgb" (a camera) or "audio" (a microphone)."""
    allowed = CAMERA_KINDS if sensor == "rgb" else AUDIO_KINDS
    raw = text.strip()
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
        raise ConfigError(f"--{sensor} {text!r} is not a valid {sensor} source; use one of: {examples}")
    if kind == "cam" and not target.isdigit():
        raise ConfigError(f"--{sensor} {text!r}: cam: takes a device index such as cam:0")
    return SourceSpec(kind, target, raw)
