#!/usr/bin/env bash
# Creates (or updates) the project's Python virtual environment in .venv with pinned packages.
# Used to record reference trajectories from Gymnasium; the Rust build and tests do not need it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null; then
  echo "error: $PYTHON not found; install Python 3.10+ or set PYTHON=/path/to/python3" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r scripts/requirements.txt
.venv/bin/python -c "import gymnasium, numpy; print('venv ready: gymnasium', gymnasium.__version__, 'numpy', numpy.__version__)"
