"""Stable-Baselines3 on every id: make_vec_env (which asks for render_mode="rgb_array" and falls
back on TypeError) and a short PPO run."""
import pytest

sb3 = pytest.importorskip("stable_baselines3")
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

import dcem  # noqa: E402


@pytest.mark.parametrize("env_id", dcem.envs.IDS)
def test_make_vec_env_and_a_short_ppo_run(env_id):
    venv = make_vec_env(env_id, n_envs=2, seed=0)
    model = sb3.PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    obs = venv.reset()
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape[0] == 2
    venv.close()
