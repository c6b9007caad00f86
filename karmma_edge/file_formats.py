"""Reading config and record files: YAML into a pydantic model, JSON; every error names the file (and
the field). No torch here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from karmma_edge.errors import ConfigError, KarmmaError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> dict:
    """The mapping a YAML file holds."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; see configs/ for examples")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, e.g. `epochs: 10`; "
                          f"found {type(raw).__name__}")
    return raw


def validate(cls: type[M], raw: Mapping[str, Any], where: str) -> M:
    """`cls` from `raw`; a `ConfigError` names `where` (the file) and each bad field."""
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        fields = "; ".join(f"{'.'.join(map(str, err['loc'])) or '(top level)'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{where}: {fields}") from None


def load_yaml_model(cls: type[M], path: Path | None, overrides: Mapping[str, Any] | None = None) -> M:
    """`cls` from the YAML file `path` (None: defaults only) with `overrides` laid over it.

    An override key may be dotted ("http.port") to reach into a section; a None value means the
    option was not given, so the file's value stands.
    """
    raw = read_yaml(path) if path is not None else {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return validate(cls, raw, str(path) if path is not None else "command line")


def read_json(path: Path, fix: str, error: type[KarmmaError] = ConfigError, missing_fix: str | None = None,
              label: str = "") -> Any:
    """The JSON value in `path`; an absent or malformed file raises `error` naming the file (after
    `label`, e.g. the option that named it) and `fix` (`missing_fix` where the file is absent)."""
    path = Path(path)
    where = f"{label} {path}" if label else str(path)
    if not path.is_file():
        raise error(f"{where}: file not found; {missing_fix or fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{where}: not valid JSON ({e}); {fix}") from None
    except OSError as e:
        raise error(f"{where}: cannot be read ({e}); {fix}") from None
