#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the whole KARMMA chain on the built-in synthetic data.
#   bash scripts/demo.sh [DIR [karmma-edge demo options, e.g. --ce-student]]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/karmma-edge demo --out "${1:-karmma-demo}" "${@:2}"
