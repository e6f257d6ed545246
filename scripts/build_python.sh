#!/usr/bin/env bash
# Builds the Python package `dcem` (python/, pyo3 + maturin) with the MuJoCo tasks and installs
# it, editable, into the project's venv (.venv, made by scripts/setup_venv.sh). Then
# `.venv/bin/python -c "import dcem"` works, and `python -m pytest python/tests` tests it.
#
#   scripts/build_python.sh            # debug-profile build (fast to compile), into .venv
#   scripts/build_python.sh --wheel    # an optimised wheel in target/wheels/ instead
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh >/dev/null
cd python
if [ "${1:-}" = "--wheel" ]; then
  ../.venv/bin/maturin build --release --features mujoco
else
  # maturin uses the venv named by VIRTUAL_ENV.
  VIRTUAL_ENV="$PWD/../.venv" ../.venv/bin/maturin develop --quiet --features mujoco
fi
