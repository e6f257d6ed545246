#!/usr/bin/env bash
# Creates (or updates) the project's Python virtual environment in .venv with the pinned packages
# of scripts/requirements.txt (Gymnasium, MuJoCo 3.17.0, dm-control 1.0.50), then prepares
# .venv/mujoco-link, the folder the `mujoco` feature of dcem-envs links against and loads
# libmujoco from (see .cargo/config.toml). Safe to run again; it only installs what is missing.
#
# Environment: PYTHON=/path/to/python3 picks the interpreter (3.10 or newer) for a new venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! command -v "$PYTHON" >/dev/null; then
    echo "error: $PYTHON not found; install Python 3.10+ or set PYTHON=/path/to/python3" >&2
    exit 1
  fi
  "$PYTHON" -m venv .venv
fi
# Skip pip entirely when every pin is already installed (the common case in the test command).
if ! .venv/bin/python - scripts/requirements.txt <<'PY' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
fi
MJ_LIB=$(.venv/bin/python -c "import mujoco, os; print(os.path.join(os.path.dirname(mujoco.__file__), 'libmujoco.so.' + mujoco.__version__))")
if [ ! -f "$MJ_LIB" ]; then
  echo "error: the mujoco wheel has no $MJ_LIB; is mujoco==3.17.0 installed in .venv?" >&2
  exit 1
fi
mkdir -p .venv/mujoco-link
# The unversioned name is what the linker looks for; the versioned one is the library's soname,
# which the loader looks for through the rpath.
ln -sfn "$MJ_LIB" .venv/mujoco-link/libmujoco.so
ln -sfn "$MJ_LIB" ".venv/mujoco-link/$(basename "$MJ_LIB")"
.venv/bin/python -c "import gymnasium, mujoco, dm_control, numpy; from importlib.metadata import version; print('venv ready: gymnasium', gymnasium.__version__, '| mujoco', mujoco.__version__, '| dm-control', version('dm-control'), '| numpy', numpy.__version__)"
