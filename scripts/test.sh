#!/usr/bin/env bash
# Runs every test of the project: unit, integration, property and doc tests of the Rust crates
# with the MuJoCo environments (their equivalence tests run dm_control itself), then the Python
# package's pytest suite. First makes the project's Python venv (.venv: pinned mujoco,
# dm-control, gymnasium, maturin, pytest; see scripts/setup_venv.sh), which is quick when it
# already exists, and builds the Python package into it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh
cargo test --workspace --all-targets --features dcem-envs/mujoco,dcem-envs/python
cargo test --workspace --doc --features dcem-envs/mujoco,dcem-envs/python
scripts/build_python.sh
.venv/bin/python -m pytest python/tests -q
