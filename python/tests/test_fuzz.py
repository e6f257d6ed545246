"""Random bad calls into the package: every one returns or raises an ``Exception`` (never a
``PanicException``, which ``except Exception`` does not catch, never an abort or a hang)."""
import numpy as np

import dcem
from dcem import _rust as _core

HOSTILE = [0, 1, 2, 3, -1, -(2**40), 2**31, 2**62, 2**70, 2.5, float("nan"), float("inf"),
           -1e300, None, "x", [], [1, 2], np.zeros(3), True, np.int64(-3)]
OPTIONS = ["n_batch", "n_sample", "n_elite", "n_iter", "tau", "init_sigma", "lb", "ub",
           "normalize", "iter_eps", "sigma_floor", "seed", "noise_beta", "time_steps",
           "keep_elites", "population_decay", "add_mean_last", "return_best", "init_mu"]


def objectives(rng):
    target = rng.normal(size=3)
    return [
        lambda x: ((x - target[: x.shape[-1]]) ** 2).sum(-1) if x.shape[-1] <= 3 else x.sum(-1),
        lambda x: np.zeros(3),
        lambda x: np.full(x.shape[:2], np.nan),
        lambda x: np.full(x.shape[:2], -np.inf),
        lambda x: np.full(x.shape[:2], "a"),
        lambda x: x.sum(),
        lambda x: x.sum(-1).astype(np.int64),
        lambda x: 1 / 0,
        lambda x: None,
        lambda x: x,
    ]


def call(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the point: anything but a BaseException-only panic
        pass


def test_a_thousand_bad_solver_calls_raise_exceptions():
    rng = np.random.default_rng(0)
    fs = objectives(rng)
    for i in range(1000):
        nx = HOSTILE[rng.integers(len(HOSTILE))] if rng.random() < 0.3 else int(rng.integers(1, 4))
        kwargs = {"n_iter": 3, "n_sample": 20, "n_elite": 4}
        for name in rng.choice(OPTIONS, size=rng.integers(1, 4), replace=False):
            kwargs[str(name)] = HOSTILE[rng.integers(len(HOSTILE))]
        # A huge iteration count with early stopping off would run for hours: the bound on
        # n_iter (2**40) is checked elsewhere; keep the random ones short.
        if isinstance(kwargs.get("n_iter"), (int, np.integer)) and 3 < kwargs["n_iter"] <= 2**40:
            kwargs["n_iter"] = 3
        f = fs[rng.integers(len(fs))]
        solver = dcem.dcem if rng.random() < 0.3 else dcem.cem
        call(solver, f, nx, **kwargs)
        # The extension itself, without the Python wrapper's conversions.
        raw = dict(n_batch=1, n_sample=20, n_elite=4, n_iter=3, tau=0.0, init_mu=None,
                   init_sigma=1.0, lb=None, ub=None, normalize=True, iter_eps=1e-4,
                   sigma_floor=1e-6, seed=0, noise_beta=0.0, time_steps=None, keep_elites=0.0,
                   population_decay=1.0, add_mean_last=False, return_best=False, noise=None)
        raw.update(kwargs)
        call(_core.solve, f, nx, **raw)


def test_bad_env_calls_raise_exceptions():
    rng = np.random.default_rng(1)
    ids = dcem.env_ids() + ["nope", "", "../x"]
    for i in range(300):
        name = ids[rng.integers(len(ids))]
        try:
            env = _core.RustEnv(name)
        except Exception:  # noqa: BLE001
            continue
        if rng.random() < 0.8:
            call(env.reset, HOSTILE[rng.integers(len(HOSTILE))] if rng.random() < 0.3 else 0)
        actions = [np.zeros(0), np.zeros(1), np.zeros(6), np.full(1, np.nan), np.full(1, 1e300),
                   np.zeros((2, 2)), np.array([np.inf]), np.zeros(100), np.zeros(1, np.int64)]
        for _ in range(3):
            call(env.step, actions[rng.integers(len(actions))])
        n = HOSTILE[rng.integers(len(HOSTILE))] if rng.random() < 0.5 else 2
        try:
            venv = _core.RustVecEnv(name, n)
        except Exception:  # noqa: BLE001
            continue
        m = venv.num_envs
        call(venv.reset, HOSTILE[rng.integers(len(HOSTILE))])
        batch = [np.zeros((m, 1)), np.zeros((1, 1)), np.full((m, 6), np.nan), np.zeros((m, 1, 1))]
        call(venv.step, batch[rng.integers(len(batch))])
