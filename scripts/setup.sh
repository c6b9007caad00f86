#!/usr/bin/env bash
# Create .venv (Python 3.11) with the toolkit, training tools and test tools, torch pinned to the CPU
# build (constraints/cpu.txt). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, from the pin, so nothing later can pull a CUDA build.
.venv/bin/python -m pip install -q -c constraints/cpu.txt torch
.venv/bin/python -m pip install -q -c constraints/cpu.txt -e '.[train,dev]'
