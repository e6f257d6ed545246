"""Records reference trajectories from Gymnasium for the envs crate's replay tests.

Run with the project's venv (scripts/setup_venv.sh):
    .venv/bin/python scripts/record_gym.py
Writes envs/tests/data/cartpole_v1.json and envs/tests/data/pendulum_v1.json: per episode the
initial state (float64, from env.unwrapped.state), the actions, and what each step returned.
"""

import json
import pathlib

import gymnasium as gym
import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "envs" / "tests" / "data"


def record(env_id, seeds, policy):
    env = gym.make(env_id)
    episodes = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        ep = {
            "seed": seed,
            "initial_state": [float(v) for v in env.unwrapped.state],
            "initial_obs": [float(v) for v in obs],
            "actions": [],
            "obs": [],
            "rewards": [],
            "terminated": [],
            "truncated": [],
        }
        while True:
            action = policy(env, obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            ep["actions"].append([float(v) for v in np.atleast_1d(action)])
            ep["obs"].append([float(v) for v in obs])
            ep["rewards"].append(float(reward))
            ep["terminated"].append(bool(terminated))
            ep["truncated"].append(bool(truncated))
            if terminated or truncated:
                break
        episodes.append(ep)
    env.close()
    return {"env_id": env_id, "gymnasium": gym.__version__, "numpy": np.__version__, "episodes": episodes}


def random_policy(env, obs):
    return env.action_space.sample()


def balancing_policy(env, obs):
    # Push towards where the pole falls: balances for the full 500 steps from most starts.
    return int(obs[2] + 0.5 * obs[3] > 0)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cartpole = record("CartPole-v1", [0, 1, 2, 3], random_policy)
    cartpole["episodes"] += record("CartPole-v1", [4], balancing_policy)["episodes"]
    pendulum = record("Pendulum-v1", [0, 1], random_policy)
    for name, data in [("cartpole_v1", cartpole), ("pendulum_v1", pendulum)]:
        path = OUT / f"{name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        tmp.replace(path)
        steps = sum(len(e["actions"]) for e in data["episodes"])
        print(f"wrote {path} ({len(data['episodes'])} episodes, {steps} steps)")


if __name__ == "__main__":
    main()
