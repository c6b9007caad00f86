"""What a model expects from its sensors: the one preprocessing record (no torch here).

Data loading, calibration, export, the bundle manifest and the device runtime all read this record,
so the frames, rates and mel settings a model was trained with are the ones it is fed on the device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class InputSpec:
    frames: int = 8                 # T frames per clip, rgb and flow alike
    height: int = 64
    width: int = 64
    sample_rate: int = 24000        # audio rate the graph expects (EPIC audio is 24 kHz)
    audio_seconds: float = 1.0      # audio window, centred on the segment
    rgb_mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    rgb_std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    flow_mean: float = 0.5          # EPIC flow JPEGs map u, v to 0..255 around 128
    flow_std: float = 0.25
    n_fft: int = 512
    hop_length: int = 375          # 64 STFT frames per second at 24 kHz
    n_mels: int = 40
    f_min: float = 50.0
    f_max: float = 12000.0
    log_eps: float = 1e-6
    modalities: tuple[str, ...] = field(default=("rgb", "flow", "audio"))
    # How the T frames are drawn: "segments" takes the centres of T equal bins of the segment (TSN,
    # TSM); "dense" takes T frames `frame_stride` apart around its centre (SlowFast, Omnivore).
    sampling: str = "segments"
    frame_stride: int = 1
    flow_stack: int = 1             # (u, v) pairs per sampled frame: 5 for the TSN/TSM flow streams

    @property
    def audio_samples(self) -> int:
        return int(round(self.sample_rate * self.audio_seconds))

    def input_shape(self, modality: str) -> tuple[int, ...]:
        """Per-clip shape of a graph input, without the leading batch axis (DESIGN section 5)."""
        if modality == "rgb":
            return (self.frames, self.height, self.width, 3)
        if modality == "flow":       # channels u0, v0, u1, v1, ... of consecutive flow frames
            return (self.frames, self.height, self.width, 2 * self.flow_stack)
        if modality == "audio":
            return (self.audio_samples,)
        raise KeyError(modality)

    def input_dtype(self, modality: str) -> str:
        return "float32" if modality == "audio" else "uint8"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["audio_samples"] = self.audio_samples
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("rgb_mean", "rgb_std", "modalities"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


@dataclass(frozen=True)
class FlowEncoding:
    """How a dataset's flow frames were made, which the device repeats so that its flow reads like
    the flow the model was trained on: flow (DIS on the device and in the synthetic data) computed on
    frames `height` rows high and `width` wide (None: the camera's aspect kept), displacements in
    those frames' pixels clipped to +-`bound_px` and mapped to 0..255; the readers then resize u and
    v to the model's size, and so does the device.

    The dataset declares it (`Dataset.flow_encoding`), the student's run and the bundle's manifest
    carry it. A model's InputSpec does not: the same model trains on data of any frame size.
    """

    bound_px: float
    height: int
    width: int | None = None

    def frame_size(self, camera_height: int, camera_width: int) -> tuple[int, int]:
        """(height, width) to resize a camera frame of this size to before computing its flow."""
        if self.width is not None:
            return self.height, self.width
        return self.height, max(1, round(camera_width * self.height / camera_height))

    def to_dict(self) -> dict:
        return asdict(self)
