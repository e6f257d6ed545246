"""DCEM for PyTorch: the LML projection as an autograd function and DCEM as a module.

Needs PyTorch (``pip install "dcem[torch]"``). Everything here is differentiable: a loss on the
solution of :class:`DCEM` reaches the parameters of its objective (and the initial mean and
deviation), through the reparameterised samples and the soft top-k, as in the paper (alg. 1,
prop. 3).

- :func:`lml` / :class:`LML`: the soft top-k ``y = sigmoid((x + nu) / tau)`` with
  ``sum(y) = k`` per row. The forward is the framework's Rust solver, in float64 (tensors on
  another device are copied to the CPU and back); the backward is the implicit-function
  gradient ``grad_x = d * (g - <d, g> / sum(d))`` with ``d = y (1 - y) / tau``.
- :class:`DCEM`: the differentiable cross-entropy method on a torch objective, with the same
  options and update as ``dcem.dcem`` (normalised values, soft elites, weighted mean and
  deviation, bounds, per-row early stop). Given the same ``noise`` both give the same solution.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

import numpy as np
import torch

from . import _int
from ._native import core as _rust

__all__ = ["LML", "lml", "DCEM", "DCEMSolution"]


class LML(torch.autograd.Function):
    """The LML projection of the last dimension of ``x``: forward by the Rust solver (float64),
    backward by the implicit function theorem. Use through :func:`lml`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: float, tau: float) -> torch.Tensor:  # type: ignore[override]
        rows = x.detach().reshape(-1, x.shape[-1]).to("cpu", torch.float64).contiguous().numpy()
        y = _rust.lml(rows, float(k), float(tau))
        out = torch.from_numpy(y).to(device=x.device, dtype=x.dtype).reshape(x.shape)
        ctx.save_for_backward(out)
        ctx.tau = float(tau)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        if ctx.tau == 0.0:
            # The hard top-k is piecewise constant.
            return torch.zeros_like(y), None, None
        d = y * (1.0 - y) / ctx.tau
        total = d.sum(-1, keepdim=True)
        # Rows whose weights are all 0 or 1 (k >= n, or saturated) have no gradient.
        safe = torch.where(total > 0, total, torch.ones_like(total))
        gx = d * (grad - (d * grad).sum(-1, keepdim=True) / safe)
        return gx, None, None


def lml(x: torch.Tensor, k: float, tau: float = 1.0) -> torch.Tensor:
    """The soft top-``k`` of the last dimension of ``x`` at temperature ``tau`` (paper eq. 4);
    differentiable. ``k`` must be at least 1; ``tau = 0`` is the hard top-k (zero gradient)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last dimension, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    return LML.apply(x, float(k), float(tau))


class DCEMSolution(NamedTuple):
    """What :class:`DCEM` returns: the solution ``mu`` ``[n_batch, nx]`` (differentiable), the
    final deviation ``sigma`` ``[n_batch, nx]`` and the iterations each row ran."""

    mu: torch.Tensor
    sigma: torch.Tensor
    iterations: list


Objective = Callable[[torch.Tensor], torch.Tensor]


class DCEM(torch.nn.Module):
    """The differentiable cross-entropy method minimising a torch objective.

    ``objective`` maps samples ``[n_batch, n_sample, nx]`` to values ``[n_batch, n_sample]``;
    when it is a ``torch.nn.Module`` it is registered as a submodule, so its parameters are this
    module's (for an optimiser training it through the solver). Each of ``n_iter`` iterations
    samples ``x = clamp(mu + sigma * eps, lb, ub)``, normalises the values per row
    (``(v - mean) / (std + 1e-6)`` if ``normalize``), takes the soft top-``n_elite`` of ``-v / tau``
    with :func:`lml` and refits ``mu`` and ``sigma`` (at least ``sigma_floor``) to the weighted
    samples; a row stops once its mean moves less than ``iter_eps`` (0: never). Non-finite
    values rank last. The defaults are ``dcem.dcem``'s.
    """

    def __init__(
        self,
        objective: Union[Objective, torch.nn.Module],
        nx: int,
        *,
        n_sample: int = 100,
        n_elite: int = 10,
        n_iter: int = 10,
        tau: float = 1.0,
        init_sigma: float = 1.0,
        lb: Optional[float] = None,
        ub: Optional[float] = None,
        normalize: bool = True,
        iter_eps: float = 1e-4,
        sigma_floor: float = 1e-6,
    ):
        super().__init__()
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        self.objective = objective
        self.nx = _int("nx", nx)
        self.n_sample = _int("n_sample", n_sample)
        self.n_elite = _int("n_elite", n_elite)
        self.n_iter = _int("n_iter", n_iter)
        if self.nx < 1 or self.n_iter < 1:
            raise ValueError(f"nx and n_iter must be at least 1, got nx={self.nx}, n_iter={self.n_iter}")
        if not 1 <= self.n_elite < self.n_sample:
            raise ValueError(
                f"need 1 <= n_elite < n_sample, got n_elite={self.n_elite}, n_sample={self.n_sample}"
            )
        for name, value in [("tau", tau), ("init_sigma", init_sigma), ("sigma_floor", sigma_floor)]:
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not (np.isfinite(iter_eps) and iter_eps >= 0):
            raise ValueError(f"iter_eps must be >= 0, got {iter_eps}")
        if lb is not None and ub is not None and not lb < ub:
            raise ValueError(f"need lb < ub, got lb={lb}, ub={ub}")
        self.tau, self.init_sigma = float(tau), float(init_sigma)
        self.lb = None if lb is None else float(lb)
        self.ub = None if ub is None else float(ub)
        self.normalize = bool(normalize)
        self.iter_eps, self.sigma_floor = float(iter_eps), float(sigma_floor)

    def _clamp(self, x: torch.Tensor) -> torch.Tensor:
        if self.lb is None and self.ub is None:
            return x
        return x.clamp(self.lb, self.ub)

    def forward(
        self,
        init_mu: Optional[torch.Tensor] = None,
        init_sigma: Optional[torch.Tensor] = None,
        *,
        n_batch: Optional[int] = None,
        noise: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> DCEMSolution:
        """Solves ``n_batch`` problems from ``init_mu`` ``[n_batch, nx]`` (default zeros, with
        ``n_batch`` default 1) and ``init_sigma`` (default the constructor's). ``noise``
        ``[n_iter, n_batch, n_sample, nx]`` replaces the draws (which otherwise come from
        ``torch.randn`` with ``generator``); with the same noise ``dcem.dcem`` returns the same
        ``mu``."""
        if init_mu is None:
            b = 1 if n_batch is None else _int("n_batch", n_batch)
            dtype = noise.dtype if noise is not None else torch.get_default_dtype()
            device = noise.device if noise is not None else None
            mu = torch.zeros(b, self.nx, dtype=dtype, device=device)
        else:
            mu = init_mu
            if mu.dim() == 1:
                mu = mu.unsqueeze(0).expand(1 if n_batch is None else _int("n_batch", n_batch), -1)
            if mu.dim() != 2 or mu.shape[1] != self.nx:
                raise ValueError(f"init_mu must have shape (n_batch, {self.nx}), got {tuple(init_mu.shape)}")
        b = mu.shape[0]
        if n_batch is not None and _int("n_batch", n_batch) != b:
            raise ValueError(f"n_batch={n_batch} but init_mu has {b} rows")
        sigma = (
            torch.full_like(mu, self.init_sigma)
            if init_sigma is None
            else torch.as_tensor(init_sigma, dtype=mu.dtype, device=mu.device).expand_as(mu)
        )
        want = (self.n_iter, b, self.n_sample, self.nx)
        if noise is not None and tuple(noise.shape) != want:
            raise ValueError(f"noise must have shape (n_iter, n_batch, n_sample, nx) = {want}, got {tuple(noise.shape)}")
        active = torch.ones(b, dtype=torch.bool, device=mu.device)
        iterations = torch.zeros(b, dtype=torch.long)
        k = self.n_elite
        for it in range(self.n_iter):
            if noise is not None:
                eps = noise[it].to(dtype=mu.dtype, device=mu.device)
            else:
                eps = torch.randn(b, self.n_sample, self.nx, dtype=mu.dtype, device=mu.device,
                                  generator=generator)
            x = self._clamp(mu.unsqueeze(1) + sigma.unsqueeze(1) * eps)
            values = self.objective(x)
            if not isinstance(values, torch.Tensor) or tuple(values.shape) != (b, self.n_sample):
                got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
                raise ValueError(f"the objective must return shape ({b}, {self.n_sample}), got {got}")
            weights = lml(-self._standardise(values), k, self.tau)
            w = weights.unsqueeze(1)  # [B, 1, N]
            mu_new = (w @ x).squeeze(1) / k
            var = (w @ (x - mu_new.unsqueeze(1)).square()).squeeze(1) / k
            sigma_new = var.clamp_min(self.sigma_floor**2).sqrt()
            was_active = active.clone()
            if self.iter_eps > 0:
                moved = (mu_new - mu).detach().square().sum(-1).sqrt()
                active = active & ~(moved < self.iter_eps)
            keep = was_active.unsqueeze(1)
            mu = torch.where(keep, mu_new, mu)
            sigma = torch.where(keep, sigma_new, sigma)
            iterations[was_active.cpu()] = it + 1
            if not bool(active.any()):
                break
        return DCEMSolution(self._clamp(mu), sigma, iterations.tolist())

    def _standardise(self, values: torch.Tensor) -> torch.Tensor:
        """Non-finite values replaced by the row's worst finite value plus one (they rank last),
        then ``(v - mean) / (std + 1e-6)`` per row when ``normalize``."""
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            worst = torch.where(finite, values, torch.full_like(values, -torch.inf)).amax(-1, keepdim=True)
            fill = torch.where(torch.isfinite(worst), worst + 1.0, torch.zeros_like(worst)).detach()
            values = torch.where(finite, values, fill.expand_as(values))
        if not self.normalize:
            return values
        centred = values - values.mean(-1, keepdim=True)
        return centred / (centred.square().sum(-1, keepdim=True) / (values.shape[-1] - 1)).sqrt().add(1e-6)
