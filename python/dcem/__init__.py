"""dcem: the Differentiable Cross-Entropy Method framework, from Python.

- ``dcem.envs``: the framework's Rust environments as ``gymnasium.Env`` subclasses, registered
  with Gymnasium on import under the ``dcem/`` namespace (``gymnasium.make("dcem/CartPole-v1")``),
  each with a Rust vector env for ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``.
- ``dcem.cem`` / ``dcem.dcem``: the batched CEM / DCEM solver minimising a numpy objective;
  ``dcem.lml`` the soft top-k it uses.
- ``dcem.torch`` (needs PyTorch): the LML projection as a ``torch.autograd.Function`` and DCEM
  as a ``torch.nn.Module``, differentiable with respect to the objective's parameters.
"""
from __future__ import annotations

from typing import Callable, Optional

import operator

import numpy as np

from ._native import core as _rust
from . import envs as envs  # registers the environments with Gymnasium

__version__ = _rust.__version__
__all__ = ["cem", "dcem", "envs", "env_ids", "lml"]

Objective = Callable[[np.ndarray], np.ndarray]


def _int(name: str, value) -> int:
    """``value`` as an int: Python and numpy integers (and bools) pass, anything else (a float,
    even ``2.0``) is a TypeError and a negative value a ValueError, instead of being cut."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})") from None
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def lml(x: np.ndarray, k: float, tau: float = 1.0) -> np.ndarray:
    """The LML projection of each row of ``x`` (``[batch, n]`` or ``[n]``): the soft top-``k``
    ``y = sigmoid((x + nu) / tau)`` with ``sum(y) = k`` (paper eq. 4), computed in float64 by
    the Rust solver. ``tau = 0`` is the hard top-k indicator. For gradients use
    :func:`dcem.torch.lml`."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in (1, 2):
        raise ValueError(f"x must be 1- or 2-dimensional, got shape {a.shape}")
    y = _rust.lml(np.ascontiguousarray(a.reshape(-1, a.shape[-1])), float(k), float(tau))
    return y.reshape(a.shape)


def env_ids() -> list[str]:
    """The Rust environment ids of this build (``cheetah-run`` and ``walker-walk`` only when it
    was built with MuJoCo)."""
    return list(_rust.env_ids())


def cem(
    f: Objective,
    nx: int,
    *,
    n_batch: int = 1,
    n_sample: int = 100,
    n_elite: int = 10,
    n_iter: int = 10,
    tau: float = 0.0,
    init_mu: Optional[np.ndarray] = None,
    init_sigma: float = 1.0,
    lb: Optional[float] = None,
    ub: Optional[float] = None,
    normalize: bool = True,
    iter_eps: float = 1e-4,
    sigma_floor: float = 1e-6,
    seed: int = 0,
    noise_beta: float = 0.0,
    time_steps: Optional[int] = None,
    keep_elites: float = 0.0,
    population_decay: float = 1.0,
    add_mean_last: bool = False,
    return_best: bool = False,
    noise: Optional[np.ndarray] = None,
) -> dict:
    """Minimises ``f`` with the cross-entropy method, ``n_batch`` problems at once.

    ``f`` takes samples of shape ``[n_batch, n_sample, nx]`` (float64) and returns their values,
    shape ``[n_batch, n_sample]``. Each iteration samples around the mean, keeps the ``n_elite``
    lowest values (``tau = 0``; with ``tau > 0`` a soft top-k at that temperature, which is DCEM)
    and refits the mean and standard deviation to them. Samples are clamped to ``[lb, ub]``.
    ``init_mu`` is ``[n_batch, nx]`` (default zeros). A row stops early once its mean moves less
    than ``iter_eps``. The solver is the Rust one (same options and checks); ``seed`` fixes
    every sample.

    iCEM's options (all off by default): ``noise_beta`` colours the sampling noise with a
    ``f^-beta`` spectrum along a time axis (rows laid out as ``time_steps`` steps of
    ``nx / time_steps`` coordinates; default: the whole row is one sequence), ``keep_elites``
    (a fraction of ``n_elite``) of an iteration's best samples are evaluated again in the next,
    ``population_decay`` shrinks the samples of iteration ``i`` to ``n_sample / decay**i`` (at
    least ``2 n_elite``), ``add_mean_last`` also evaluates the mean in the last iteration and
    ``return_best`` returns the best sample seen instead of the final mean.

    ``noise`` replaces the seeded draws with given standard-normal values, shape
    ``[n_iter, n_batch, n_sample, nx]`` (iteration ``t`` uses ``noise[t]``; with
    ``population_decay`` its first samples): the same noise gives the same solve, here and in
    :class:`dcem.torch.DCEM`.

    Returns a dict: ``mu`` ``[n_batch, nx]`` (the solution), ``sigma``, ``best_value``
    ``[n_batch]`` (lowest finite value seen), ``iterations`` (per row), ``non_finite`` (NaN
    or infinite values met, ranked last) and ``evaluations`` (samples evaluated per row).

    Raises ``ValueError`` for a bad option or a wrong-shaped return, and re-raises any exception
    ``f`` raises, with its traceback.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    mu = None
    if init_mu is not None:
        mu = np.ascontiguousarray(np.asarray(init_mu, dtype=np.float64))
        if mu.ndim == 1:
            mu = np.ascontiguousarray(np.broadcast_to(mu, (_int("n_batch", n_batch), mu.shape[0])))
    return _rust.solve(
        f,
        _int("nx", nx),
        n_batch=_int("n_batch", n_batch),
        n_sample=_int("n_sample", n_sample),
        n_elite=_int("n_elite", n_elite),
        n_iter=_int("n_iter", n_iter),
        tau=float(tau),
        init_mu=mu,
        init_sigma=float(init_sigma),
        lb=None if lb is None else float(lb),
        ub=None if ub is None else float(ub),
        normalize=bool(normalize),
        iter_eps=float(iter_eps),
        sigma_floor=float(sigma_floor),
        seed=_int("seed", seed),
        noise_beta=float(noise_beta),
        time_steps=None if time_steps is None else _int("time_steps", time_steps),
        keep_elites=float(keep_elites),
        population_decay=float(population_decay),
        add_mean_last=bool(add_mean_last),
        return_best=bool(return_best),
        noise=None if noise is None else np.ascontiguousarray(np.asarray(noise, dtype=np.float64)),
    )


def dcem(f: Objective, nx: int, *, tau: float = 1.0, **kwargs) -> dict:
    """DCEM: :func:`cem` with the soft top-k at temperature ``tau`` (default 1, the paper's).
    From numpy nothing is differentiated; the solver is the same one the Rust side backpropagates
    through."""
    if not tau > 0:
        raise ValueError(f"dcem needs tau > 0 (tau = 0 is plain cem), got {tau}")
    return cem(f, nx, tau=tau, **kwargs)
