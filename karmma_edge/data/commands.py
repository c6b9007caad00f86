"""`karmma-edge data ...`: synthesize, inspect and check datasets. Heavy imports stay inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from karmma_edge.cli_options import DATA_HELP, DataFormat, Layout, choice_enum, deprecated, prefer
from karmma_edge.data.synth.presets import PRESETS

SynthPreset = choice_enum("SynthPreset", PRESETS)

app = typer.Typer(help="Datasets: make the synthetic benchmark, inspect a segment, check a tree.", no_args_is_help=True)


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="directory to write (must not exist, or be empty)"),
    preset: SynthPreset = typer.Option(SynthPreset.tiny, "--preset", help="tiny: tests, seconds; demo: trains in "
                                       "minutes; full; scale: 20,004 small training clips"),
    seed: int = typer.Option(0, "--seed", help="the same seed gives a byte-identical dataset"),
    force: bool = typer.Option(False, "--force", help="replace a previous synthetic dataset at --out"),
    layout: Layout = typer.Option(Layout.folders, "--layout", help="folders: frame JPEG files; tar: EPIC's "
                                  "per-video tars, far fewer files"),
    fmt: DataFormat = typer.Option(DataFormat.epic100, "--format", help="dataset format (ssv2: one .webm per clip, "
                                   "one action label, no audio)"),
) -> None:
    """Write the synthetic egocentric benchmark in EPIC-KITCHENS-100 (or Something-Something v2) layout."""
    from karmma_edge.data.synth.generate import synthesize

    root = synthesize(out, preset=preset.value, seed=seed, progress=True, force=force, layout=layout.value,
                      fmt=fmt.value)
    typer.echo(f"wrote {root}")


@app.command()
def inspect(
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    root: Optional[Path] = deprecated("--root", "--data"),
    segment_id: str = typer.Option(..., "--id", help="segment id (EPIC narration_id, or SSv2 video id)"),
    out: Path = typer.Option(..., "--out", help="the .npz to write"),
    fmt: DataFormat = typer.Option(DataFormat.epic100, "--format", help="dataset format (epic100 is also the "
                                   "synthetic data's)"),
    frames: int = typer.Option(8, "--frames", help="frames per clip"),
    size: str = typer.Option("64x64", "--size", help="model input WIDTHxHEIGHT (frames are resized, never cropped)"),
    audio_seconds: float = typer.Option(1.0, "--audio-seconds", help="audio window centred on the segment, seconds"),
    sample_rate: int = typer.Option(24000, "--sample-rate", help="audio rate the model expects, Hz"),
) -> None:
    """Write the exact evaluation-mode arrays a model receives for one segment."""
    from karmma_edge.data.inspect import inspect_segment
    from karmma_edge.errors import ConfigError
    from karmma_edge.inputs import InputSpec

    root = _root(data, root)
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 64x64") from None
    spec = InputSpec(frames=frames, height=height, width=width, audio_seconds=audio_seconds, sample_rate=sample_rate)
    arrays = inspect_segment(root, segment_id, out, spec, fmt.value)
    for key, value in arrays.items():
        typer.echo(f"{key:<12} {str(value.dtype):<8} {list(value.shape)}")
    typer.echo(f"wrote {out}")


@app.command()
def check(
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    root: Optional[Path] = deprecated("--root", "--data"),
    fmt: DataFormat = typer.Option(DataFormat.epic100, "--format", help="dataset format (epic100 is also the "
                                   "synthetic data's)"),
    decode: bool = typer.Option(False, "--decode", help="also decode every JPEG (slower; by default only the markers are checked)"),
) -> None:
    """Validate a dataset: list every missing or unreadable file with the segments that need it."""
    from karmma_edge.data.check import check_dataset
    from karmma_edge.errors import DataError

    root = _root(data, root)
    report = check_dataset(root, fmt=fmt.value, decode=decode, progress=True)
    for line in report.lines():
        typer.echo(line)
    if report.problems:
        raise DataError(f"{root}: {len(report.problems)} problem(s) listed above; restore those files "
                        "(or drop the segments from the CSV) and run the check again")
    typer.echo(f"ok: {report.segments} segments in {', '.join(report.splits)}; every file present and readable")


def _root(data: Path | None, root: Path | None) -> Path:
    path = prefer(data, root, "--root", "--data")
    if path is None:
        raise typer.BadParameter("the dataset root is required", param_hint="--data")
    return path
