"""dm_control's env.step rate for cheetah.run and walker.walk, the reference for the Rust bench
(envs/benches/dmc_step.rs runs this script and prints both).

Times `--steps` calls of env.step with uniform random actions on one thread, resets excluded
(an episode that ends is reset outside the timed region). Prints one JSON object:
{"cheetah-run": steps_per_second, "walker-walk": steps_per_second}.
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
            n = 0
            while done < steps:
                ts = env.step(actions[done % 1000])
                done += 1
                n += 1
                if ts.last():
                    break
            elapsed += time.perf_counter() - t0
            if ts.last():
                env.reset()
        best = max(best, steps / elapsed)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(json.dumps({
        "cheetah-run": rate("cheetah", "run", args.steps, args.repeats),
        "walker-walk": rate("walker", "walk", args.steps, args.repeats),
    }))


if __name__ == "__main__":
    main()
