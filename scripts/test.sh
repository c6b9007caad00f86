#!/usr/bin/env bash
# Set up, run the test suite, then the device-runtime tests again on Python 3.10 without torch
# (JetPack 6's system Python), against a bundle the 3.11 environment builds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"

# A working Python 3.10: $PYTHON310, python3.10 on PATH, or a pyenv-installed 3.10 (pyenv's shim
# refuses to run a version that is installed but not selected).
PY310=${PYTHON310:-}
if [ -z "$PY310" ] && python3.10 --version >/dev/null 2>&1; then
  PY310=python3.10
fi
if [ -z "$PY310" ] && command -v pyenv >/dev/null; then
  for candidate in "$(pyenv root)"/versions/3.10*/bin/python3.10; do
    if [ -x "$candidate" ]; then PY310=$candidate; break; fi
  done
fi
if [ -z "$PY310" ]; then
  echo "no Python 3.10 found: skipped the Python 3.10 runtime job (set PYTHON310 to run it)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -x .venv310/bin/python ]; then
  "$PY310" -m venv .venv310
fi
.venv310/bin/python -m pip install -q --upgrade pip
.venv310/bin/python -m pip install -q -e . pytest pytest-timeout requests
.venv/bin/python scripts/make_test_bundle.py "$work"
KARMMA_TEST_BUNDLE="$work/bundle" KARMMA_TEST_DATA="$work/data" \
  .venv310/bin/python -m pytest -q -p no:cacheprovider tests/test_runtime_*.py tests/test_no_torch.py
