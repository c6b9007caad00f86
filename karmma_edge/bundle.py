"""The bundle (DESIGN section 4): manifest schema, hashing, atomic writing, loading. No torch here."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from karmma_edge.errors import BundleError
from karmma_edge.file_formats import read_json
from karmma_edge.inputs import FlowEncoding, InputSpec

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


class Artifact(BaseModel):
    path: str                       # relative to the bundle root
    sha256: str


class Calibration(BaseModel):
    method: str
    set_sha256: str
    clips: int
    settings: dict = Field(default_factory=dict)


class Accuracy(BaseModel):
    action_top1: float
    verb_top1: float | None = None         # None for a single-label (Something-Something) model
    noun_top1: float | None = None
    clips: int
    clips_right: int | None = None         # action right on this many of `clips` (absent before schema 1.1)
    evaluation: str | None = None          # how it was measured (INT8: the Q/DQ graph as written)


class ProfileEntry(BaseModel):
    modalities: list[str]
    artifacts: dict[str, Artifact]          # "fp32", "int8", "calibration_report"
    calibration: Calibration | None = None
    accuracy: dict[str, Accuracy] = Field(default_factory=dict)   # per precision, held-out split
    quantization: dict = Field(default_factory=dict)              # what was chosen and why


class InputEntry(BaseModel):
    shape: list[int | str]                 # with the leading batch axis "B"
    dtype: str
    preprocessing: str                     # what the graph does to it


class Manifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    model_id: str
    classes: dict[str, list[str]]          # "verb" and "noun", or "action" for a single-label model
    input_spec: dict
    inputs: dict[str, InputEntry]
    outputs: list[str]
    profiles: dict[str, ProfileEntry]
    tools: dict[str, str] = Field(default_factory=dict)
    eval_split: str = "validation"
    # How the training data's flow was made, which the device's flow repeats; None where the data
    # did not say (a real EPIC tree): the daemon's `flow.bound_px` at the model's frame size.
    flow_encoding: FlowEncoding | None = None

    @property
    def spec(self) -> InputSpec:
        return InputSpec.from_dict(self.input_spec)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(root: Path, manifest: Manifest) -> None:
    (root / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")


def load_manifest(root: Path) -> Manifest:
    path = Path(root) / MANIFEST
    if not Path(root).is_dir():
        raise BundleError(f"bundle {root} does not exist; build one with `karmma-edge build --run RUN --out {root}`")
    if not path.is_file():
        raise BundleError(f"{path} is missing: {root} is not a bundle; rebuild it with `karmma-edge build`")
    data = read_json(path, "rebuild the bundle with `karmma-edge build`", BundleError)
    if not isinstance(data, dict):
        raise BundleError(f"{path} holds a JSON {type(data).__name__}, not a manifest object; rebuild the bundle "
                          "with `karmma-edge build`")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(
            f"{path} has schema version {data.get('schema_version')}, this karmma-edge reads {SCHEMA_VERSION}; "
            "rebuild the bundle with this version's `karmma-edge build`"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise BundleError(f"{path} is not a valid manifest: {e}") from None


class Bundle:
    """A bundle on disk: its manifest and verified paths to its artifacts."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest = load_manifest(self.root)

    @property
    def profiles(self) -> list[str]:
        return list(self.manifest.profiles)

    def artifact(self, profile: str, kind: str, verify: bool = True) -> Path:
        entry = self.manifest.profiles.get(profile)
        if entry is None:
            raise BundleError(
                f"bundle {self.root} has no profile {profile!r}; it has: {', '.join(self.profiles)}"
            )
        art = entry.artifacts.get(kind)
        if art is None:
            raise BundleError(f"bundle {self.root} has no {kind} artifact for profile {profile!r}")
        path = self.root / art.path
        if not path.is_file():
            raise BundleError(f"{path} is missing from the bundle; rebuild it with `karmma-edge build`")
        if verify and sha256_file(path) != art.sha256:
            raise BundleError(
                f"{path} does not match the SHA-256 in {self.root / MANIFEST}: the file was changed or "
                "corrupted; rebuild the bundle with `karmma-edge build`"
            )
        return path
