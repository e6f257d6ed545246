"""The Rust solver on a numpy objective (the book's Python page)."""
import dcem

out = dcem.dcem(lambda x: ((x - 1.5) ** 2).sum(-1), nx=3, n_batch=2)
print(out["mu"])  # ~1.5 everywhere
