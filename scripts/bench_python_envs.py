"""Step rates from Python: the Rust environments through Gymnasium against Gymnasium's own.

    .venv/bin/python scripts/bench_python_envs.py [--steps 100000] [--num-envs 16]

Single env: `gymnasium.make(id)` (with Gymnasium's default wrappers) stepped with random actions
drawn up front, reset when an episode ends (resets included). Vector: `gymnasium.make_vec(id,
num_envs)` — Gymnasium's CartPole-v1 in its own native vector env (`vector_entry_point`) and
sync mode, ours in its Rust vector env — stepped `steps / num_envs` times. Best of three runs;
prints a Markdown table of env steps per second.
"""
import argparse
import time

import gymnasium as gym
import numpy as np

import dcem  # noqa: F401  (registers dcem/*)


def single_rate(env_id, steps):
    env = gym.make(env_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=steps)
    best = 0.0
    for _ in range(3):
        env.reset(seed=0)
        t0 = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = env.step(int(a))
            if term or trunc:
                env.reset()
        best = max(best, steps / (time.perf_counter() - t0))
    return best


def vector_rate(env_id, n, steps, mode):
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode=mode)
    iters = max(steps // n, 1)
    actions = np.random.default_rng(0).integers(0, 2, size=(iters, n))
    best = 0.0
    for _ in range(3):
        envs.reset(seed=0)
        t0 = time.perf_counter()
        for a in actions:
            envs.step(a)
        best = max(best, iters * n / (time.perf_counter() - t0))
    envs.close()
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--num-envs", type=int, default=16)
    args = p.parse_args()
    n = args.num_envs
    rows = [
        ("single env, gym.make", single_rate("CartPole-v1", args.steps), single_rate("dcem/CartPole-v1", args.steps)),
        (f"make_vec x{n}, vector_entry_point", vector_rate("CartPole-v1", n, args.steps, "vector_entry_point"),
         vector_rate("dcem/CartPole-v1", n, args.steps, "vector_entry_point")),
        (f"make_vec x{n}, sync", vector_rate("CartPole-v1", n, args.steps, "sync"),
         vector_rate("dcem/CartPole-v1", n, args.steps, "sync")),
    ]
    print("| CartPole, steps/s | Gymnasium CartPole-v1 | dcem/CartPole-v1 (Rust) | ratio |")
    print("|---|---|---|---|")
    for name, theirs, ours in rows:
        print(f"| {name} | {theirs:,.0f} | {ours:,.0f} | {ours / theirs:.1f}x |")


if __name__ == "__main__":
    main()
