"""DCEM in PyTorch: a loss on the solution trains the objective (the book's Python page)."""
import torch
from dcem.torch import DCEM


class Cost(torch.nn.Module):          # a learnable objective
    def __init__(self):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x):             # [batch, n_sample, 2] -> [batch, n_sample]
        return ((x - self.theta) ** 2).sum(-1)


solver = DCEM(Cost(), nx=2, n_sample=50, n_elite=10, n_iter=8, tau=1.0, init_sigma=2.0)
opt = torch.optim.Adam(solver.parameters(), lr=0.1)
goal = torch.tensor([1.0, -1.0])
for _ in range(60):
    loss = ((solver().mu - goal) ** 2).sum()   # a loss on the solution...
    opt.zero_grad()
    loss.backward()
    opt.step()                                 # ...trains the objective
