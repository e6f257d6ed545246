"""Runs a DeepMind Control task in dm_control and records one episode for the Rust equivalence
test (envs/tests/dmc_equivalence.rs).

The episode: reset with a seed, then `--steps` actions drawn uniformly from [-1, 1] by numpy
(seed + 1). Recorded: the joint positions right after the task's random draw (before its
settling steps), the state after reset (qpos, qvel, qacc_warmstart), the first observation, the
actions, and every reward and observation. Floats are written as the integers of their IEEE-754
bits, so the Rust side reads exactly the values dm_control computed.

    .venv/bin/python scripts/dmc_reference.py --task cheetah-run --seed 0 --out /tmp/ep.json
"""
import argparse
import json
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")  # no window system is needed; nothing is rendered

import numpy as np
from absl import logging as absl_logging

absl_logging.set_verbosity(absl_logging.ERROR)  # MuJoCo's note on cheetah.xml's settotalmass


def bits(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.uint64).ravel().tolist()


def flat(obs):
    return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in obs.values()])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=["cheetah-run", "walker-walk"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    from dm_control import suite

    domain, task = args.task.split("-")
    env = suite.load(domain, task, task_kwargs={"random": args.seed})
    physics = env.physics

    # The randomised pose is what qpos holds when the task first steps the physics during reset
    # (cheetah settles for 200 steps); a task that does not step keeps it to the end of reset.
    captured = {}
    step = physics.step

    def recording_step(nstep=1):
        captured.setdefault("qpos", physics.data.qpos.copy())
        return step(nstep)

    physics.step = recording_step
    ts = env.reset()
    physics.step = step
    randomized = captured.get("qpos", physics.data.qpos.copy())

    record = {
        "task": args.task,
        "seed": args.seed,
        "mujoco": __import__("mujoco").__version__,
        "randomized_qpos": bits(randomized),
        "qpos": bits(physics.data.qpos),
        "qvel": bits(physics.data.qvel),
        "qacc_warmstart": bits(physics.data.qacc_warmstart),
        "obs0": bits(flat(ts.observation)),
    }
    spec = env.action_spec()
    actions = np.random.RandomState(args.seed + 1).uniform(spec.minimum, spec.maximum, (args.steps, spec.shape[0]))
    rewards, observations, last = [], [], []
    for a in actions:
        ts = env.step(a)
        rewards.append(ts.reward)
        observations.append(flat(ts.observation))
        last.append(bool(ts.last()))
    record.update(
        actions=bits(actions),
        rewards=bits(rewards),
        observations=bits(np.stack(observations)),
        obs_dim=int(observations[0].size),
        action_dim=int(spec.shape[0]),
        last=last,
    )
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    sys.exit(main())
