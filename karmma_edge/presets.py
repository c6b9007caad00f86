"""The YAML presets shipped inside the package (karmma_edge/configs), so an installed wheel finds them.

`--config` takes a file; when no such file exists, a preset's name (`student-demo`, `student-demo.yaml`) or
the repository path it used to live at (`configs/student-demo.yaml`) names the packaged copy instead.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from karmma_edge.errors import ConfigError


def _packaged() -> Path:
    # The wheel installs the package as plain files, so the traversable is a real directory.
    with as_file(files("karmma_edge") / "configs") as path:
        return Path(path)


CONFIG_DIR = _packaged()


def preset_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config(value: Path | str) -> Path:
    """A config file given on the command line: the file itself, or else the packaged preset it names."""
    path = Path(value)
    if path.is_file():
        return path
    bare = len(path.parts) == 1 or path.parent.name == "configs"
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    if bare and (CONFIG_DIR / name).is_file():
        return CONFIG_DIR / name
    raise ConfigError(f"config file {value} does not exist; give a YAML file or one of the packaged presets: "
                      + ", ".join(preset_names()))
