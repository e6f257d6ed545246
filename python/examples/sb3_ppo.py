"""Stable-Baselines3's PPO on one of the Rust environments (the book's Python page)."""
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
import dcem  # noqa: F401  (registers the ids)

model = PPO("MlpPolicy", make_vec_env("dcem/Pendulum-v1", n_envs=4), verbose=0)
model.learn(total_timesteps=10_000)
