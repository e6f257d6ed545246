"""The book's Python examples (python/examples/) run, and do what the page says they do."""
import pathlib
import runpy

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run(name):
    return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_envs_example_makes_steps_and_renders():
    import dcem

    if dcem._native.mujoco_unavailable is not None:
        pytest.skip("the example makes dcem/CheetahRun-v0, which needs the mujoco extension")
    ns = run("envs.py")
    assert ns["frame"].shape == (400, 600, 3) and ns["frame"].dtype == np.uint8
    assert ns["envs"].num_envs == 8
    assert ns["pendulum"].spec.id == "dcem/Pendulum-v1"
    ns["envs"].close()


def test_solver_example_finds_the_minimum():
    ns = run("solver.py")
    assert np.allclose(ns["out"]["mu"], 1.5, atol=0.1)


def test_torch_example_trains_the_objective_towards_the_goal():
    pytest.importorskip("torch")
    ns = run("torch_dcem.py")
    mu = ns["solver"]().mu.detach().numpy()
    assert np.abs(mu - np.array([1.0, -1.0])).max() < 0.3, mu


def test_sb3_example_learns_without_error():
    pytest.importorskip("stable_baselines3")
    ns = run("sb3_ppo.py")
    assert ns["model"].num_timesteps >= 10_000
