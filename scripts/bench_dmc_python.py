"""dm_control's env.step rate for cheetah.run and walker.walk, the reference for the Rust bench
(envs/benches/dmc_step.rs runs this script and prints both).

Times `--steps` calls of env.step with uniform random actions on one thread, resets excluded
(an episode that ends is reset outside the timed region); also the rate of MuJoCo alone on the
same model (mujoco.mj_step called from Python). Prints one JSON object:
{"cheetah-run": steps/s, "walker-walk": steps/s, "<task>/mj_step": steps/s of MuJoCo alone}.
"""
import argparse
import json
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
from absl import logging as absl_logging

absl_logging.set_verbosity(absl_logging.ERROR)


def rate(domain, task, steps, repeats):
    from dm_control import suite

    env = suite.load(domain, task, task_kwargs={"random": 0})
    spec = env.action_spec()
    actions = np.random.RandomState(1).uniform(spec.minimum, spec.maximum, (1000, spec.shape[0]))
    best = 0.0
    for _ in range(repeats):
        env.reset()
        elapsed, done = 0.0, 0
        while done < steps:
            t0 = time.perf_counter()
            while done < steps:
                ts = env.step(actions[done % 1000])
                done += 1
                if ts.last():
                    break
            elapsed += time.perf_counter() - t0
            if ts.last():
                env.reset()
        best = max(best, steps / elapsed)
    return best


def physics_rate(domain, task, steps):
    """Control steps per second of MuJoCo alone: mujoco.mj_step with the task's substeps,
    called directly on dm_control's model and data (no dm_control code in the loop)."""
    import mujoco
    from dm_control import suite

    env = suite.load(domain, task, task_kwargs={"random": 0})
    env.reset()
    model, data = env.physics.model.ptr, env.physics.data.ptr
    n_sub = env._n_sub_steps
    actions = np.random.RandomState(1).uniform(-1, 1, (steps, model.nu))
    best = 0.0
    for _ in range(3):
        env.reset()
        t0 = time.perf_counter()
        for a in actions:
            data.ctrl[:] = a
            mujoco.mj_step(model, data, n_sub)
        best = max(best, steps / (time.perf_counter() - t0))
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(json.dumps({
        "cheetah-run": rate("cheetah", "run", args.steps, args.repeats),
        "walker-walk": rate("walker", "walk", args.steps, args.repeats),
        "cheetah-run/mj_step": physics_rate("cheetah", "run", 1000),
        "walker-walk/mj_step": physics_rate("walker", "walk", 1000),
    }))


if __name__ == "__main__":
    main()
