#!/usr/bin/env bash
# Builds the Python package `dcem` (python/, pyo3 + maturin) for CPython 3.10 and later (one
# abi3 build): the extension `dcem._core` and its MuJoCo build `dcem._core_mujoco`
# (python/core_mujoco), which links the libmujoco of the PyPI `mujoco` package at run time.
#
#   scripts/build_python.sh               # editable install into the project's .venv (debug
#                                         # profile, fast to compile): `.venv/bin/python -c
#                                         # "import dcem"` then works, .py edits need no rebuild
#   scripts/build_python.sh --wheel       # the release wheel, target/wheels/dcem-*.whl
#   scripts/build_python.sh --test-wheel  # the same wheel from the `wheel-test` profile (the
#                                         # debug profile, dependencies at opt-level 1: see
#                                         # Cargo.toml), target/wheels-test/ (what
#                                         # scripts/test_wheel.sh tests)
#
# Wheels are linked with zig (the pinned PyPI `ziglang`) against glibc 2.28, tagged
# manylinux_2_28, and checked by scripts/check_wheel.py: no rpath, glibc symbols <= 2.28, only
# manylinux libraries and libmujoco needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh >/dev/null
mode="${1:-}"
maturin=(.venv/bin/maturin)
case "$mode" in
  "") profile=dev; zig=() ;;
  --wheel) profile=release; out=target/wheels ;;
  --test-wheel) profile=wheel-test; out=target/wheels-test ;;
  *) echo "usage: scripts/build_python.sh [--wheel | --test-wheel]" >&2; exit 2 ;;
esac
if [ -n "$mode" ]; then
  # maturin finds zig through the venv's `python -m ziglang`.
  export PATH="$PWD/.venv/bin:$PATH"
  zig=(--zig --compatibility manylinux_2_28)
fi
# maturin uses the venv named by VIRTUAL_ENV.
export VIRTUAL_ENV="$PWD/.venv"

# 1. The MuJoCo build of the extension, taken out of its wheel into python/dcem/.
ext_dir=target/core-mujoco-wheel
rm -rf "$ext_dir"
(cd python/core_mujoco && "../../${maturin[0]}" build --quiet --profile "$profile" \
  "${zig[@]}" --auditwheel skip -o "../../$ext_dir")
.venv/bin/python - "$ext_dir" python/dcem <<'PY'
import glob, sys, zipfile
(wheel,) = glob.glob(f"{sys.argv[1]}/*.whl")
with zipfile.ZipFile(wheel) as z:
    (name,) = [n for n in z.namelist() if n.split("/")[-1].startswith("_core_mujoco.") and n.endswith(".so")]
    data = z.read(name)
with open(f"{sys.argv[2]}/_core_mujoco.abi3.so", "wb") as f:
    f.write(data)
PY

# 2. The package, with the plain extension, the MuJoCo one and the Python sources.
if [ -z "$mode" ]; then
  (cd python && "../${maturin[0]}" develop --quiet --profile dev)
else
  rm -rf "$out"
  # libmujoco is not bundled (it comes from the `mujoco` extra): maturin's repair is skipped
  # and scripts/check_wheel.py checks the wheel instead.
  (cd python && "../${maturin[0]}" build --quiet --profile "$profile" "${zig[@]}" \
    --auditwheel skip -o "../$out")
  .venv/bin/python scripts/check_wheel.py "$out"/dcem-*.whl
fi
