"""The `karmma-edge` command line: one typer app assembled from each area's commands.

Each area's commands module imports its heavy dependencies inside the command, so `--help` and the
device-side commands start without torch. A user error is a KarmmaError, caught once here: its
message is printed and the exit status is 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from karmma_edge import __version__
from karmma_edge.cli_options import choice_enum
from karmma_edge.data import commands as data_commands
from karmma_edge.edge_runtime import commands as runtime_commands
from karmma_edge.edge_runtime.measure import device_check
from karmma_edge.errors import KarmmaError
from karmma_edge.quantize import commands as quantize_commands
from karmma_edge.train import commands as train_commands
from karmma_edge.train.reproduce import PRESETS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build, benchmark and serve a missing-modality-robust action recogniser on edge devices.")
app.add_typer(data_commands.app, name="data")
train_commands.register(app)
quantize_commands.register(app)
runtime_commands.register(app)
device_check.register(app)


def _print_version(requested: bool) -> None:
    if requested:
        typer.echo(f"karmma-edge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", callback=_print_version, is_eager=True,
                                                  help="print the version and exit")) -> None:
    """Build, benchmark and serve a missing-modality-robust action recogniser on edge devices."""


DemoPreset = choice_enum("DemoPreset", [name for name, p in PRESETS.items() if p.format == "epic100"])


@app.command()
def demo(out: Path = typer.Option(Path("karmma-demo"), "--out", help="directory for everything the demo writes; "
                                  "rerun to reuse its finished stages"),
         preset: DemoPreset = typer.Option(DemoPreset.demo, "--preset", help="the `reproduce` preset whose data and "
                                           "training runs the demo makes (smoke: about a minute, not a result)"),
         ce_student: bool = typer.Option(False, "--ce-student", help="also train the CE student with modality "
                                         "dropout from the same pre-trained encoders (reproduce's control) and "
                                         "show it beside KARMMA_S")) -> None:
    """The whole KARMMA chain on the built-in data: extractors, teacher, distilled student, INT8 bundle, bench."""
    from karmma_edge.demo import run_demo

    run_demo(out, preset.value, ce_student=ce_student)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()               # click handles its own usage errors (exit 2) and --help
    except KarmmaError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
