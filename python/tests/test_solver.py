"""cem / dcem from numpy: minima found, options checked, Python errors propagated."""
import numpy as np
import pytest

import dcem


def quadratic(target):
    return lambda x: ((x - target) ** 2).sum(-1)


def test_dcem_finds_the_minimum_of_a_quadratic():
    target = np.array([1.0, -2.0, 0.5])
    out = dcem.dcem(quadratic(target), 3, n_batch=4, n_iter=30, init_sigma=2.0, seed=1)
    assert out["mu"].shape == (4, 3)
    np.testing.assert_allclose(out["mu"], np.broadcast_to(target, (4, 3)), atol=0.05)
    assert out["best_value"].shape == (4,)


def test_cem_with_bounds_and_init():
    out = dcem.cem(quadratic(np.array([3.0, 3.0])), 2, lb=-1.0, ub=1.0, n_iter=20,
                   init_mu=np.array([0.5, -0.5]), sigma_floor=0.01)
    assert np.all(out["mu"] <= 1.0) and np.all(out["mu"] >= -1.0)
    np.testing.assert_allclose(out["mu"], [[1.0, 1.0]], atol=0.05)


def test_seed_fixes_the_result():
    a = dcem.dcem(quadratic(0.3), 2, seed=7)
    b = dcem.dcem(quadratic(0.3), 2, seed=7)
    np.testing.assert_array_equal(a["mu"], b["mu"])


def test_objective_sees_the_documented_shapes():
    seen = []

    def f(x):
        seen.append(x.shape)
        assert x.dtype == np.float64
        return x.sum(-1)

    dcem.cem(f, 5, n_batch=2, n_sample=30, n_elite=3, n_iter=2, iter_eps=0.0)
    assert seen == [(2, 30, 5), (2, 30, 5)]


def test_errors():
    with pytest.raises(ValueError, match="n_elite"):
        dcem.cem(quadratic(0.0), 2, n_elite=0)
    with pytest.raises(ValueError, match="tau"):
        dcem.dcem(quadratic(0.0), 2, tau=0.0)
    with pytest.raises(ValueError, match="shape"):
        dcem.cem(lambda x: np.zeros(3), 2)
    with pytest.raises(TypeError):
        dcem.cem(3, 2)

    class Boom(Exception):
        pass

    def fails(x):
        raise Boom("inside the objective")

    with pytest.raises(Boom, match="inside the objective") as info:
        dcem.cem(fails, 2)
    assert "fails" in "".join(str(e.name) for e in info.traceback)


def test_icem_options():
    target = np.array([0.5, -0.5, 0.25, 0.0])
    out = dcem.cem(quadratic(target), 4, n_batch=2, n_sample=40, n_elite=8, n_iter=5,
                   iter_eps=0.0, noise_beta=2.0, time_steps=2, keep_elites=0.5,
                   population_decay=1.25, add_mean_last=True, return_best=True, seed=3)
    # 40 + 32 + 26 + 21 + 17 fresh (at least 2 x 8 = 16), 4 kept in each later iteration, the mean.
    assert out["evaluations"] == [136 + 4 * 4 + 1] * 2
    # return_best: the solution is the best sample seen.
    np.testing.assert_allclose(quadratic(target)(out["mu"]), out["best_value"], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="time_steps"):
        dcem.cem(quadratic(target), 4, noise_beta=1.0, time_steps=3)
    with pytest.raises(ValueError, match="keep_elites"):
        dcem.cem(quadratic(target), 4, keep_elites=2.0)


def test_offset_and_scaled_objectives_are_solved_like_the_plain_one():
    # Values are ranked in f32: an offset of 1e8 or a scale of 1e-50 would make every sample
    # look equal without the f64 shift (and scale) applied first.
    target = np.array([0.7, -0.3])
    q = quadratic(target)
    plain = dcem.cem(q, 2, n_iter=30, seed=4)
    for f in (lambda x: 1e8 + q(x), lambda x: 1e-50 * q(x), lambda x: 1e30 * q(x)):
        out = dcem.cem(f, 2, n_iter=30, seed=4)
        np.testing.assert_allclose(out["mu"], plain["mu"], atol=1e-4)
        np.testing.assert_allclose(out["mu"], [target], atol=0.05)
    out = dcem.cem(lambda x: 1e8 + q(x), 2, n_iter=30, seed=4)
    assert out["best_value"][0] - 1e8 == pytest.approx(plain["best_value"][0], abs=1e-6)
    # DCEM at tau 1 without normalisation is shift-invariant only: the offset is removed.
    soft = dcem.dcem(q, 2, normalize=False, seed=5)
    shifted = dcem.dcem(lambda x: 1e8 + q(x), 2, normalize=False, seed=5)
    np.testing.assert_allclose(shifted["mu"], soft["mu"], atol=1e-4)


def test_integers_are_required_where_integers_are_meant():
    for bad in (2.7, 2.0, "2", None):
        with pytest.raises(TypeError, match="nx must be an integer"):
            dcem.cem(quadratic(0.0), bad)
    with pytest.raises(TypeError, match="n_sample"):
        dcem.cem(quadratic(0.0), 2, n_sample=100.0)
    with pytest.raises(ValueError, match="n_iter"):
        dcem.cem(quadratic(0.0), 2, n_iter=-1)
    out = dcem.cem(quadratic(0.0), np.int64(2), n_sample=np.int32(20), n_elite=4, n_iter=2)
    assert out["mu"].shape == (1, 2)


def test_huge_sizes_are_refused_before_allocating():
    calls = []

    def f(x):
        calls.append(1)
        return x.sum(-1)

    for kwargs, field in [
        (dict(nx=2**40), "nx"),
        (dict(nx=2, n_batch=2**40), "n_batch"),
        (dict(nx=2, n_sample=2**40), "n_sample"),
        (dict(nx=2, n_iter=2**62), "n_iter"),
        (dict(nx=4096, n_batch=4096, n_sample=4096), "memory budget"),
    ]:
        nx = kwargs.pop("nx")
        with pytest.raises(ValueError, match=field):
            dcem.cem(f, nx, **kwargs)
    assert not calls


def test_an_objective_error_or_interrupt_ends_the_solve_at_once():
    import signal

    calls = []

    def fails(x):
        calls.append(1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        dcem.cem(fails, 2, n_iter=10**9, iter_eps=0.0)
    assert len(calls) == 1

    calls.clear()

    def interrupted(x):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C does
        return (x ** 2).sum(-1)

    with pytest.raises(KeyboardInterrupt):
        dcem.cem(interrupted, 2, n_iter=10**9, iter_eps=0.0)
    assert len(calls) == 3
