"""The installed package: where it was imported from, the MuJoCo extension, the fallback
without MuJoCo."""
import os
import subprocess
import sys

import gymnasium as gym
import pytest

import dcem

INSTALLED = bool(os.environ.get("DCEM_TEST_INSTALLED"))


@pytest.mark.skipif(not INSTALLED, reason="only for the installed wheel (scripts/test_wheel.sh)")
def test_the_wheel_is_what_is_tested_with_mujoco():
    assert "site-packages" in dcem.__file__
    assert dcem._native.mujoco_unavailable is None
    assert {"dcem/CheetahRun-v0", "dcem/WalkerWalk-v0"} <= set(dcem.envs.IDS)


def test_without_mujoco_the_mujoco_ids_name_the_fix():
    code = (
        "import gymnasium as gym, dcem\n"
        "assert 'cheetah-run' not in dcem.env_ids()\n"
        "gym.make('dcem/CartPole-v1').reset(seed=0)\n"
        "try:\n"
        "    gym.make('dcem/CheetahRun-v0')\n"
        "except gym.error.DependencyNotInstalled as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "DCEM_NO_MUJOCO": "1"},
                         capture_output=True, text=True, check=True).stdout
    assert "needs MuJoCo" in out and "DCEM_NO_MUJOCO" in out
    assert gym.spec("dcem/CheetahRun-v0").max_episode_steps == 1000
