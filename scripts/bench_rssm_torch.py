"""The planet_dcem benchmark (agents/planet_dcem/benches/planet.rs) written in PyTorch, for
comparison on the same machine: the same RSSM (GRU 200 with fused gates, stochastic 30, hidden
200, cheetah.run's 17 observations and 6 actions), timed on

* one model update: the one-step variational bound on a [50 x 50] chunk batch, backward, Adam;
* the loss and its backward alone (no clipping or Adam);
* one full-CEM planning call: 1000 samples / 100 elites / 10 iterations, horizon 12;
* one latent-DCEM planning call: 100 / 10 / 10, tau 1 (soft top-k by bisection on the LML
  threshold), 16-D latent, decoder 16-200-200-72.

Run in a bench-only venv with torch from PyPI (not part of the test command):
    python3 -m venv .bench-venv && .bench-venv/bin/pip install torch numpy
    .bench-venv/bin/python scripts/bench_rssm_torch.py [--threads 2]
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

OBS, ACT, D, Z, H = 17, 6, 200, 30, 200


class Rssm(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(OBS, H), nn.ReLU(), nn.Linear(H, H))
        self.inp = nn.Linear(Z + ACT, H)
        self.gru = nn.Linear(H + D, 3 * D)
        self.prior = nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, 2 * Z))
        self.post = nn.Sequential(nn.Linear(D + H, H), nn.ReLU(), nn.Linear(H, 2 * Z))
        self.obs_head = nn.Sequential(nn.Linear(D + Z, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, OBS))
        self.reward = nn.Sequential(nn.Linear(D + Z, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 1))

    def cell(self, h, x):
        r, c, u = self.gru(torch.cat([x, h], 1)).split(D, 1)
        c = torch.tanh(torch.sigmoid(r) * c)
        u = torch.sigmoid(u - 1.0)
        return u * c + (1 - u) * h

    def transition(self, h, s, a):
        return self.cell(h, F.relu(self.inp(torch.cat([s, a], 1))))

    @staticmethod
    def gaussian(raw):
        m, s = raw.split(Z, 1)
        return m, F.softplus(s) + 0.1

    def loss(self, obs, act, rew, noise, L, B):
        emb = F.relu(self.encoder(obs))
        h = obs.new_zeros(B, D)
        s = obs.new_zeros(B, Z)
        a = obs.new_zeros(B, ACT)
        feats, kls = [], []
        for t in range(L):
            r = slice(t * B, (t + 1) * B)
            h = self.transition(h, s, a)
            pm, ps = self.gaussian(self.prior(h))
            qm, qs = self.gaussian(self.post(torch.cat([h, emb[r]], 1)))
            s = qm + qs * noise[r]
            ratio, diff = qs / ps, (qm - pm) / ps
            kls.append(0.5 * (ratio ** 2 - 1 + diff ** 2 - 2 * ratio.log()).sum(1))
            feats.append(torch.cat([h, s], 1))
            a = act[r]
        f = torch.cat(feats, 0)
        obs_loss = 0.5 * ((self.obs_head(f) - obs) ** 2).sum(1).mean()
        rew_loss = 0.5 * ((self.reward(f[B:]) - rew[: (L - 1) * B]) ** 2).mean()
        kl = torch.cat(kls).mean()
        return obs_loss + rew_loss + torch.clamp(kl, min=3.0)

    def cost(self, state, actions):
        n, hz, _ = actions.shape
        h, s = state[:, :D], state[:, D:]
        feats = []
        for t in range(hz):
            h = self.transition(h, s, actions[:, t])
            s = self.prior(h)[:, :Z]
            feats.append(torch.cat([h, s], 1))
        return -self.reward(torch.cat(feats, 0)).view(hz, n).sum(0)


def soft_topk(v, k, tau, iters=50):
    """LML projection of each row of v (lower is better: project -v) by bisection."""
    x = -v / tau
    lo = -x.max(1, keepdim=True).values - 20
    hi = -x.min(1, keepdim=True).values + 20
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        big = torch.sigmoid(x + mid).sum(1, keepdim=True) > k
        hi = torch.where(big, mid, hi)
        lo = torch.where(big, lo, mid)
    return torch.sigmoid(x + 0.5 * (lo + hi))


def cem_plan(model, state, dim, n, k, iters, sigma0, decode=None, tau=0.0, lb=-1.0, ub=1.0):
    mu = torch.zeros(dim)
    sigma = torch.full((dim,), sigma0)
    for _ in range(iters):
        x = (mu + sigma * torch.randn(n, dim)).clamp(lb, ub)
        acts = decode(x) if decode is not None else x.view(n, 12, ACT)
        v = model.cost(state.expand(n, -1), acts)
        if tau > 0:
            v = (v - v.mean()) / (v.std() + 1e-6)
            w = soft_topk(v.unsqueeze(0), k, tau)[0]
        else:
            w = torch.zeros(n)
            w[v.topk(k, largest=False).indices] = 1.0
        w = w / w.sum()
        mu = (w[:, None] * x).sum(0)
        sigma = ((w[:, None] * (x - mu) ** 2).sum(0)).sqrt() + 1e-6
    return mu


def timeit(f, reps):
    f()
    best = float("inf")
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], times[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Rssm()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4)
    L = B = 50
    obs, act = torch.randn(L * B, OBS), torch.rand(L * B, ACT) * 2 - 1
    rew, noise = torch.rand(L * B, 1), torch.randn(L * B, Z)

    def update():
        opt.zero_grad()
        model.loss(obs, act, rew, noise, L, B).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1000.0)
        opt.step()

    def loss_grad():
        model.zero_grad()
        model.loss(obs, act, rew, noise, L, B).backward()

    decoder = nn.Sequential(nn.Linear(16, 200), nn.ELU(), nn.Linear(200, 200), nn.ELU(), nn.Linear(200, 12 * ACT))
    state = torch.zeros(1, D + Z)

    def full():
        with torch.no_grad():
            cem_plan(model, state, 12 * ACT, 1000, 100, 10, 1.0)

    def latent():
        with torch.no_grad():
            dec = lambda z: torch.sigmoid(decoder(z)).mul(2).sub(1).view(-1, 12, ACT)
            cem_plan(model, state, 16, 100, 10, 10, 0.5, decode=dec, tau=1.0)

    # The largest product of a full-CEM step (the GRU's, 1000 samples): the machine's matmul rate.
    ga, gb = torch.randn(1000, 400), torch.randn(400, 600)

    def gemm():
        for _ in range(10):
            ga @ gb

    out = {"threads": args.threads, "torch": torch.__version__}
    for name, f in [("gemm_1000x600x400_x10", gemm), ("model_update_50x50", update), ("model_loss_grad_50x50", loss_grad), ("plan_full_cem_1000x10_h12", full), ("plan_latent_dcem_100x10_h12", latent)]:
        med, best = timeit(f, args.reps)
        out[name] = {"median_ms": 1e3 * med, "best_ms": 1e3 * best}
        print(f"{name}: median {1e3 * med:.1f} ms, best {1e3 * best:.1f} ms", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
