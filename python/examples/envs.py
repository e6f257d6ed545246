"""The Rust environments as Gymnasium envs (the book's Python page)."""
import gymnasium as gym
import numpy as np
import dcem  # noqa: F401  (registers the `dcem/` ids)

env = gym.make("dcem/CartpoleSwingup-v0", render_mode="rgb_array")
obs, info = env.reset(seed=0)
obs, reward, terminated, truncated, info = env.step(np.array([0.5], np.float32))
frame = env.render()                      # 400 x 600 x 3 uint8
envs = gym.make_vec("dcem/CheetahRun-v0", num_envs=8, vectorization_mode="vector_entry_point")
pendulum = gym.make("dcem/Pendulum-v1", g=9.81)   # Gymnasium's keyword arguments
