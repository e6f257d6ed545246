#!/usr/bin/env bash
# Installs the wheel built by `scripts/build_python.sh --test-wheel` into a second, clean venv
# (target/wheel-venv: the wheel with its `mujoco` and `torch` extras, stable-baselines3 and
# pytest, pinned in scripts/requirements-wheel-test.txt, nothing of the build venv) and runs the
# Python tests there against the installed package, from outside the source tree. The venv is
# made again whenever the pins change; the wheel is reinstalled every time.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
venv=target/wheel-venv
pins=scripts/requirements-wheel-test.txt
wheel=$(ls target/wheels-test/dcem-*.whl)
if ! cmp -s "$pins" "$venv/pins.txt" 2>/dev/null; then
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$pins"
  cp "$pins" "$venv/pins.txt"
fi
# --no-deps: every dependency is pinned above; the extras' names are still checked by pip.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
  --no-deps "$wheel[mujoco,torch]"
"$venv/bin/python" -m pip check
# From target/, so that `import dcem` finds the installed package, not python/dcem.
tests="$PWD/python/tests"
cd target
DCEM_TEST_INSTALLED=1 "$PWD/wheel-venv/bin/python" -m pytest "$tests" -q -p no:cacheprovider
