"""What the commands share: the enumerated choices `--help` lists, one help text per option, deprecated spellings.

The choices are `str` enums so typer shows them and click refuses anything else (exit 2) before a command
runs; a command passes `.value` on, so the code below the CLI keeps taking plain strings.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Optional

import typer

from karmma_edge.data import HELD_OUT_SPLITS
from karmma_edge.targets import BACKENDS, PRECISIONS


def choice_enum(name: str, values: Iterable[str]) -> type[Enum]:
    """A str enum of values defined elsewhere, so their one home stays the only list."""
    return Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


Precision = choice_enum("Precision", PRECISIONS)
Backend = choice_enum("Backend", BACKENDS)
HeldOutSplit = choice_enum("HeldOutSplit", HELD_OUT_SPLITS)


class DataFormat(str, Enum):
    epic100 = "epic100"
    ssv2 = "ssv2"


class Layout(str, Enum):
    folders = "folders"
    tar = "tar"


class CalibrationMethod(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"


def value(choice: Optional[Enum]) -> Optional[str]:
    return None if choice is None else choice.value


def choices(enum: type[Enum]) -> str:
    return ", ".join(m.value for m in enum)


# One wording per option, whichever command takes it.
BUNDLE_HELP = "bundle directory (from `build`)"
DATA_HELP = "dataset root"
FORMAT_HELP = "dataset format (default: the run's, else epic100)"
RUN_HELP = "training run directory (from `train student`)"
PROFILES_HELP = "profiles: one (rgb+audio), a comma list, or all"
ENGINE_CACHE_HELP = "TensorRT engine cache directory"
DLA_CORE_HELP = "TensorRT: build for this DLA core (layers DLA cannot run fall back to the GPU)"
THREADS_HELP = "ONNX Runtime intra-op threads"
# Choices (epochs, p, calibration, the gate) are made on validation; reported figures come from test.
SPLIT_HELP = "held-out split to score (default: test where the data has a labelled one, else validation)"


def deprecated(old: str, new: str) -> typer.models.OptionInfo:
    """A hidden option for a spelling users' scripts still pass; `prefer` warns when it is used."""
    return typer.Option(None, old, hidden=True, help=f"deprecated spelling of {new}")


def prefer(new_value, old_value, old: str, new: str, default=None):
    """The value of `new`, or of its deprecated spelling `old` (with a warning on stderr); both at once is an error."""
    if old_value is None:
        return default if new_value is None else new_value
    typer.echo(f"warning: {old} is deprecated and will be removed; use {new}", err=True)
    if new_value is not None:
        raise typer.BadParameter(f"give {new} only (not also its old spelling {old})", param_hint=old)
    return old_value
