#!/usr/bin/env bash
# Runs every test of the project: unit, integration, property and doc tests of the Rust crates
# with the MuJoCo environments (their equivalence tests run dm_control itself), then the Python
# package's pytest suite on the installed wheel. First makes the project's Python venv (.venv:
# pinned mujoco, dm-control, gymnasium, maturin, zig, pytest; see scripts/setup_venv.sh), which
# is quick when it already exists; then builds the wheel (scripts/build_python.sh
# --test-wheel, checked by scripts/check_wheel.py) and installs it with its extras into a
# second, clean venv where the Python tests run (scripts/test_wheel.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh
cargo test --workspace --all-targets --features dcem-envs/mujoco,dcem-envs/python
cargo test --workspace --doc --features dcem-envs/mujoco,dcem-envs/python
scripts/build_python.sh --test-wheel
scripts/test_wheel.sh
