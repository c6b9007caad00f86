#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the whole chain on the built-in synthetic data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/karmma-edge demo --out "${1:-karmma-demo}"
