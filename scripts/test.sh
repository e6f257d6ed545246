#!/usr/bin/env bash
# Runs every test of the project: unit, integration, property and doc tests of the Rust crates
# with the MuJoCo environments (their equivalence tests run dm_control itself), then the Python
# package's pytest suite on the installed wheel. First makes the project's Python venv (.venv:
# pinned mujoco, dm-control, gymnasium, maturin, zig, pytest; see scripts/setup_venv.sh), which
# is quick when it already exists; then builds the wheel (scripts/build_python.sh
# --test-wheel, checked by scripts/check_wheel.py) and installs it with its extras into a
# second, clean venv where the Python tests run (scripts/test_wheel.sh). Last, it builds the book
# (scripts/build_book.sh: docs/book with the pinned mdbook, into target/book).
#
# The Rust tests are built with the `wgpu` feature, so that the GPU path's equality tests
# (tests/gpu.rs, agents/planet_dcem/tests/gpu.rs) run against the CPU path: on a Vulkan device,
# which scripts/setup_vulkan.sh provides on the CPU (Mesa's lavapipe) where none is installed.
# Where it cannot (no root), those tests skip with a message; DCEM_REQUIRE_GPU=1 makes that a
# failure (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_venv.sh
scripts/setup_vulkan.sh
features=dcem-envs/mujoco,dcem-envs/python,dcem/wgpu,planet-dcem/wgpu
cargo test --workspace --all-targets --features "$features"
cargo test --workspace --doc --features "$features"
scripts/build_python.sh --test-wheel
scripts/test_wheel.sh
scripts/build_book.sh
