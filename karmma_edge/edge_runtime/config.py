"""`karmma-edge serve` configuration: a YAML file validated up front (pydantic names the bad field),
with command-line options laid over it."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from karmma_edge.edge_runtime.content import ContentThresholds
from karmma_edge.edge_runtime.liveness import LivenessThresholds
from karmma_edge.errors import ConfigError
from karmma_edge.file_formats import load_yaml_model


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")   # a misspelt key is an error, not a silent default


class SourcesConfig(_Section):
    rgb: str = "none"
    audio: str = "none"
    realtime: bool = True          # pace file sources at their own rate; False: as fast as possible
    loop: bool = False             # file sources start over at their end (soak tests, demos)
    # A live source (camera, RTSP, microphone) that is down is retried, first after retry_min_s,
    # then twice as long each time up to retry_max_s.
    retry_min_s: float = Field(0.25, gt=0)
    retry_max_s: float = Field(0.5, gt=0)
    # Network cameras: how long opening the stream, and waiting for one frame, may take before the
    # attempt fails (a hung stream is then a stall, not a hung daemon).
    open_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(3.0, gt=0)
    probe_s: float = Field(0.5, gt=0)   # how much of a network stream FFmpeg reads to learn its format


MIN_TOKEN_CHARS = 16


class HttpConfig(_Section):
    host: str = "127.0.0.1"        # loopback unless the user opens it up
    port: int = Field(8080, ge=0, le=65535)
    # Bearer token every endpoint requires when set: printable ASCII (it travels in a header).
    token: Optional[str] = Field(None, min_length=MIN_TOKEN_CHARS, pattern=r"^[!-~]+$")
    # Serving a non-loopback address without a token must be asked for by name.
    allow_unauthenticated_remote: bool = False
    # Host names (besides IP literals, localhost and this machine's name) the API answers to; "*"
    # for any (behind a reverse proxy that checks Host itself).
    allowed_hosts: list[str] = []
    sse_keepalive_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(5.0, gt=0)        # for a request's head, and again for its body
    keepalive_s: int = Field(5, ge=1)               # an idle kept-alive connection is closed after this
    max_body_bytes: int = Field(4096, ge=64)        # 413 beyond
    max_header_bytes: int = Field(16384, ge=1024)   # request line and headers together
    max_url_chars: int = Field(2048, ge=64)         # 414 beyond
    max_connections: int = Field(256, ge=8)         # 503 beyond (lowered to fit the fd limit)
    backlog: int = Field(1024, ge=16)               # connections the kernel queues before accept


class InferenceConfig(_Section):
    stride_s: float = Field(0.5, gt=0)         # one window every stride
    window_s: Optional[float] = Field(None, gt=0)   # frames spread over this; default: the audio window
    queue_size: int = Field(4, ge=1)           # pending windows; when full the oldest is dropped
    top_k: int = Field(5, ge=1)
    threads: int = Field(2, ge=1)              # ONNX Runtime intra-op threads
    warmup_runs: int = Field(2, ge=1)


class SelectorConfig(_Section):
    upgrade_hold_s: float = Field(0.5, ge=0)


class LivenessConfig(_Section):
    stall_timeout_s: float = Field(1.0, gt=0)
    recover_s: float = Field(0.3, ge=0)
    black_s: float = Field(1.0, ge=0)
    frozen_s: float = Field(3.0, ge=0)
    silence_s: float = Field(2.0, ge=0)
    clipping_s: float = Field(1.0, ge=0)
    flow_max_lag_s: float = Field(0.5, gt=0)
    black_level: float = Field(10.0, ge=0, le=255)
    frozen_max_diff: float = Field(0.1, ge=0)
    silence_dbfs: float = Field(-60.0, le=0)
    clip_level: float = Field(0.999, gt=0, le=1)
    clip_fraction: float = Field(0.01, ge=0, le=1)

    def thresholds(self) -> LivenessThresholds:
        return LivenessThresholds(
            stall_timeout_s=self.stall_timeout_s, recover_s=self.recover_s,
            bad_content_s={"black": self.black_s, "frozen": self.frozen_s,
                           "silence": self.silence_s, "clipping": self.clipping_s},
            flow_max_lag_s=self.flow_max_lag_s)

    def content(self) -> ContentThresholds:
        return ContentThresholds(black_level=self.black_level, frozen_max_diff=self.frozen_max_diff,
                                 silence_dbfs=self.silence_dbfs, clip_level=self.clip_level,
                                 clip_fraction=self.clip_fraction)


class FlowConfig(_Section):
    # EPIC encoding bound (pixels mapped to 0 and 255), for a bundle whose manifest has no
    # `flow_encoding` (trained on data that did not declare one, like a real EPIC tree): the device's
    # flow is then computed at the model's frame size with this bound, which must be the data's.
    bound_px: float = Field(8.0, gt=0)


class ServeConfig(_Section):
    backend: Literal["onnxruntime", "tensorrt"] = "onnxruntime"
    precision: Literal["int8", "fp32"] = "int8"
    # "auto": FP32 where ONNX Runtime's int8 CPU kernels are not exact (x86 without VNNI); "force": INT8.
    cpu_int8: Literal["auto", "force"] = "auto"
    engine_cache: Optional[Path] = None         # TensorRT plans (default: the backend's cache dir)
    dla_core: Optional[int] = None
    jsonl: Optional[Path] = None
    sources: SourcesConfig = SourcesConfig()
    http: HttpConfig = HttpConfig()
    inference: InferenceConfig = InferenceConfig()
    selector: SelectorConfig = SelectorConfig()
    liveness: LivenessConfig = LivenessConfig()
    flow: FlowConfig = FlowConfig()


def load_serve_config(path: Path | None, overrides: dict | None = None) -> ServeConfig:
    """The config file (if any) with `overrides` ({"section.key": value}, None = not given) on top."""
    cfg = load_yaml_model(ServeConfig, path, overrides)
    http = cfg.http
    if not http.token and not http.allow_unauthenticated_remote and not is_loopback(http.host):
        where = str(path) if path is not None else "command line"
        raise ConfigError(f"{where}: http.host {http.host!r} opens the API to the network without a token: set "
                          f"http.token (at least {MIN_TOKEN_CHARS} characters) in the serve config, or pass "
                          "--allow-unauthenticated-remote if the network is trusted")
    return cfg


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
