"""dcem.torch: the LML autograd function and the DCEM module, checked with torch.autograd.gradcheck
in float64 and against the Rust solver's numbers on the same noise."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import dcem  # noqa: E402
from dcem.torch import DCEM, lml  # noqa: E402


def test_lml_matches_the_rust_projection_and_sums_to_k():
    x = torch.randn(5, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for k, tau in [(1, 1.0), (5, 0.3), (10, 2.0)]:
        y = lml(x, k, tau)
        np.testing.assert_allclose(y.sum(-1).numpy(), k, rtol=1e-10)
        np.testing.assert_array_equal(y.numpy(), dcem.lml(x.numpy(), k, tau))
        # y = sigmoid((x + nu) / tau) with one nu per row: logit(y) * tau - x is constant.
        nu = torch.logit(y) * tau - x
        np.testing.assert_allclose(nu.std(-1).numpy(), 0.0, atol=1e-7)


def test_lml_gradcheck_float64():
    gen = torch.Generator().manual_seed(1)
    for k, tau in [(1, 1.0), (3, 0.5), (7, 3.0)]:
        x = torch.randn(3, 12, dtype=torch.float64, generator=gen, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: lml(t, k, tau), (x,), eps=1e-6, atol=1e-7)


def quadratic(target, scale):
    return lambda x: (scale * (x - target) ** 2).sum(-1)


def test_dcem_gradcheck_through_the_objective_parameters():
    gen = torch.Generator().manual_seed(2)
    nx, n_iter, n_sample = 3, 4, 20
    noise = torch.randn(n_iter, 2, n_sample, nx, dtype=torch.float64, generator=gen)

    def solve(target, scale):
        solver = DCEM(quadratic(target, scale), nx, n_sample=n_sample, n_elite=5, n_iter=n_iter,
                      tau=1.0, iter_eps=0.0)
        return solver(n_batch=2, noise=noise).mu

    target = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(solve, (target, scale), eps=1e-6, atol=1e-6)


def test_dcem_module_learns_its_objective_parameters():
    # A loss on the solution trains the objective (the point of DCEM): the solution of
    # min_x |x - theta|^2 is pulled to a goal by gradient steps on theta.
    class Objective(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.theta = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))

        def forward(self, x):
            return ((x - self.theta) ** 2).sum(-1)

    solver = DCEM(Objective(), 2, n_sample=50, n_elite=10, n_iter=8, tau=1.0, init_sigma=2.0)
    assert [n for n, _ in solver.named_parameters()] == ["objective.theta"]
    opt = torch.optim.Adam(solver.parameters(), lr=0.1)
    goal = torch.tensor([1.0, -1.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    losses = []
    for _ in range(60):
        mu = solver(torch.zeros(1, 2, dtype=torch.float64), generator=gen).mu
        loss = ((mu - goal) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


@pytest.mark.parametrize("lb,ub", [(None, None), (-1.0, 1.5)])
def test_dcem_equals_the_rust_solver_on_the_same_noise(lb, ub):
    rng = np.random.default_rng(4)
    nx, n_iter, n_sample, n_batch = 4, 6, 40, 3
    noise = rng.standard_normal((n_iter, n_batch, n_sample, nx))
    target = np.array([0.3, -0.7, 1.2, 0.0])
    opts = dict(n_sample=n_sample, n_elite=8, n_iter=n_iter, tau=0.5, init_sigma=1.5, lb=lb, ub=ub)
    rust = dcem.dcem(lambda x: ((x - target) ** 2).sum(-1), nx, n_batch=n_batch, noise=noise, **opts)
    t = torch.from_numpy(target)
    ours = DCEM(lambda x: ((x - t) ** 2).sum(-1), nx, **opts)(n_batch=n_batch, noise=torch.from_numpy(noise))
    # The Rust solver samples and updates in float32.
    np.testing.assert_allclose(ours.mu.numpy(), rust["mu"], rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(ours.sigma.numpy(), rust["sigma"], rtol=2e-3, atol=2e-4)
    assert ours.iterations == list(rust["iterations"])


def test_bad_input_is_a_clear_error():
    f = quadratic(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="n_elite"):
        DCEM(f, 2, n_sample=5, n_elite=5)
    with pytest.raises(TypeError, match="nx must be an integer"):
        DCEM(f, 2.5)
    with pytest.raises(ValueError, match="noise must have shape"):
        DCEM(f, 2, n_iter=2)(noise=torch.zeros(3, 1, 100, 2))
    with pytest.raises(ValueError, match="objective must return shape"):
        DCEM(lambda x: x, 2)()
    with pytest.raises(ValueError, match="k"):
        lml(torch.zeros(2, 3, dtype=torch.float64), 0.5, 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        lml(torch.zeros(2, 3, dtype=torch.int64), 1, 1.0)
