#!/usr/bin/env python3
"""The table of a lever study: one row per config, over its seeds' run folders.

Usage: scripts/levers_table.py GROUP... > table.md, where each GROUP is `LABEL=DIR[,DIR...]`
(run folders of one config, one per seed). Per group it reads every run's metrics.csv (the
periodic evaluations), diagnostics.json (open-loop errors and the plan's predicted against
received return, measured on the final-evaluation episodes) and eval.json (the final
evaluation), and writes the mean over the seeds of:

- `periodic (last 3)`: each seed's mean of its last three periodic evaluations (what configs
  are chosen on);
- `final`: the final evaluation (10 episodes from the fixed final-evaluation start states;
  reported, never chosen on);
- `obs RMSE k=1 / k=12` and `reward RMSE k=1 / k=12`: the open-loop errors;
- `optimism`: the plan's predicted minus received return over the horizon;
- `wall s`: the run's wall-clock seconds.

Only the standard library is used, so any Python 3 runs it.
"""

import csv
import json
import math
import sys
from pathlib import Path


def mean(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def run_row(d: Path) -> dict:
    with open(d / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    evals = [float(r["eval/return"]) for r in rows if r["eval/return"] not in ("", "NaN", "nan")]
    out = {
        "periodic": mean(evals[-3:]),
        "wall": float(rows[-1]["perf/wall_s"]) if rows else float("nan"),
    }
    ev = d / "eval.json"
    out["final"] = json.loads(ev.read_text())["mean"] if ev.exists() else float("nan")
    dg = d / "diagnostics.json"
    if dg.exists():
        g = json.loads(dg.read_text())
        out["obs1"], out["obs12"] = g["obs_rmse"][0], g["obs_rmse"][-1]
        out["rew1"], out["rew12"] = g["reward_rmse"][0], g["reward_rmse"][-1]
        out["optimism"] = mean(p - r for p, r in zip(g["predicted"], g["realised"]))
    return out


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cols = ["periodic", "final", "obs1", "obs12", "rew1", "rew12", "optimism", "wall"]
    print("| config | seeds | periodic (last 3) | final | obs RMSE k=1 | obs RMSE k=12 "
          "| reward RMSE k=1 | reward RMSE k=12 | optimism | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for group in sys.argv[1:]:
        if "=" not in group:
            print(f"error: `{group}` is not LABEL=DIR[,DIR...]", file=sys.stderr)
            return 2
        label, dirs = group.split("=", 1)
        runs = []
        for d in dirs.split(","):
            p = Path(d)
            if not (p / "metrics.csv").exists():
                print(f"error: {p} has no metrics.csv", file=sys.stderr)
                return 2
            runs.append(run_row(p))
        cells = []
        for c in cols:
            v = mean(r.get(c) for r in runs)
            cells.append("-" if math.isnan(v) else (f"{v:.0f}" if c == "wall" else
                                                     f"{v:.2f}" if c.startswith(("obs", "rew")) else
                                                     f"{v:.1f}"))
        print(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
