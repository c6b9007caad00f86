"""Write the tiny dataset, a tiny run and its bundle to DIR/{data,run,bundle}: what the Python 3.10
runtime job tests against, since that environment has no torch to build them."""

from __future__ import annotations

import sys
from pathlib import Path

from karmma_edge.data import synthesize
from karmma_edge.presets import CONFIG_DIR
from karmma_edge.quantize.build import BuildOptions, build_bundle
from karmma_edge.train.config import load_config
from karmma_edge.train.loop import train_student


def main(out: Path) -> None:
    data = synthesize(out / "data", preset="tiny", seed=0, progress=False)
    cfg = load_config(CONFIG_DIR / "student-tiny.yaml", data=data)
    train_student(cfg, out / "run", progress=False)
    build_bundle(BuildOptions(run=out / "run", out=out / "bundle", calibration_size=16), progress=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
