"""rliable's aggregate statistics on given score arrays, as the reference that
`dcem::run::protocol` is tested against (tests/protocol_rliable.rs).

Reads JSON from stdin: {"cases": [{"tasks": [[run scores of task 0], [task 1], ...],
"taus": [...]}, ...], "reps": N}; writes JSON to stdout: per case the IQM, mean and median
point estimates and their 95% stratified-bootstrap percentile intervals, and the performance
profile at `taus` with its band, all from rliable 1.2.0 (scores laid out as rliable's
(num_runs x num_tasks) matrix, so every task needs the same number of runs).
"""

import json
import sys

import numpy as np
from rliable import library as rly
from rliable import metrics


def pooled_median(scores):
    # The protocol's median: over every run's score (rliable's aggregate_median takes the
    # median of per-task means); intervals from rliable's StratifiedBootstrap all the same.
    return np.median(scores)


def main():
    req = json.load(sys.stdin)
    # StratifiedBootstrap draws from numpy's global generator.
    np.random.seed(0)
    reps = int(req["reps"])
    out = []
    for case in req["cases"]:
        scores = np.array(case["tasks"], dtype=np.float64).T  # (runs, tasks)
        funcs = {
            "iqm": lambda s: np.array([metrics.aggregate_iqm(s)]),
            "mean": lambda s: np.array([metrics.aggregate_mean(s)]),
            "median": lambda s: np.array([pooled_median(s)]),
        }
        res = {}
        for name, f in funcs.items():
            point, ci = rly.get_interval_estimates(
                {"x": scores},
                f,
                reps=reps,
            )
            res[name] = {
                "point": float(point["x"][0]),
                "lo": float(ci["x"][0][0]),
                "hi": float(ci["x"][1][0]),
            }
        taus = np.array(case["taus"], dtype=np.float64)
        profile, band = rly.create_performance_profile(
            {"x": scores}, taus, reps=reps
        )
        res["profile"] = [float(v) for v in profile["x"]]
        res["profile_lo"] = [float(v) for v in band["x"][0]]
        res["profile_hi"] = [float(v) for v in band["x"][1]]
        out.append(res)
    json.dump({"cases": out}, sys.stdout)


if __name__ == "__main__":
    main()
