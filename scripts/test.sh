#!/usr/bin/env bash
# Runs every test of the project: unit, integration, property and doc tests, with the MuJoCo
# environments (their equivalence tests run dm_control itself). First makes the project's
# Python venv (.venv: pinned mujoco, dm-control, gymnasium; see scripts/setup_venv.sh), which
# is quick when it already exists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh
cargo test --workspace --all-targets --features dcem-envs/mujoco
cargo test --workspace --doc --features dcem-envs/mujoco
