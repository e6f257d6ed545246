#!/usr/bin/env bash
# The RSSM and planning benches side by side with PyTorch, measured in one run on this machine:
# PyTorch (scripts/bench_rssm_torch.py), then the criterion bench
# (agents/planet_dcem/benches/planet.rs), then PyTorch again; prints the table of BENCHMARKS.md
# with each side's median, the ratio, GFLOP/s and the percent of the machine's peak.
#
#   scripts/bench_planet.sh [--threads N] [--peak GFLOPS]
#
# Needs torch in a bench-only venv (not part of the test command):
#   python3 -m venv .bench-venv && .bench-venv/bin/pip install torch numpy
# or BENCH_PYTHON=/path/to/python with torch. The default peak is 2 cores x 2.45 GHz x 32 f32
# FLOPs per cycle (AVX2 FMA) = 157 GFLOP/s; pass this machine's.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
peak=157
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --peak) peak="$2"; shift 2 ;;
        *) echo "unknown option $1 (use --threads N, --peak GFLOPS)" >&2; exit 2 ;;
    esac
done
py="${BENCH_PYTHON:-.bench-venv/bin/python}"
if ! "$py" -c "import torch" 2>/dev/null; then
    echo "no torch for $py: python3 -m venv .bench-venv && .bench-venv/bin/pip install torch numpy" \
        "(or set BENCH_PYTHON)" >&2
    exit 1
fi
out=target/bench_planet
mkdir -p "$out"
cargo bench -p planet-dcem --bench planet --no-run
"$py" scripts/bench_rssm_torch.py --threads "$threads" | tail -n 1 > "$out/torch_before.json"
RAYON_NUM_THREADS="$threads" cargo bench -p planet-dcem --bench planet 2> "$out/criterion.err" \
    | tee "$out/criterion.txt"
"$py" scripts/bench_rssm_torch.py --threads "$threads" | tail -n 1 > "$out/torch_after.json"
python3 - "$out" "$peak" <<'PY'
import json, re, sys
out, peak = sys.argv[1], float(sys.argv[2])
before = json.load(open(f"{out}/torch_before.json"))
after = json.load(open(f"{out}/torch_after.json"))
flops_line = next(l for l in open(f"{out}/criterion.err") if l.startswith("FLOPs:"))
update, full, latent = (float(x) for x in re.findall(r"([0-9.]+) GFLOP", flops_line))
rows = [
    ("gemm_1000x600x400_x10", "gemm_1000x600x400_x10", 10 * 2 * 1000 * 600 * 400 / 1e9),
    ("model_update_50x50", "model_update_50x50", update),
    ("model_loss_grad_host_50x50", "model_loss_grad_50x50", update),
    ("model_loss_grad_tape_50x50", "model_loss_grad_50x50", update),
    ("plan_full_cem_1000x10_h12", "plan_full_cem_1000x10_h12", full),
    ("plan_latent_dcem_100x10_h12", "plan_latent_dcem_100x10_h12", latent),
]
print(f"\nPyTorch {before['torch']}, {before['threads']} threads; peak {peak:.0f} GFLOP/s\n")
print("| bench | GFLOP (matmuls) | ours (median) | GFLOP/s | % of peak | PyTorch before / after | ours vs PyTorch |")
print("|---|---|---|---|---|---|---|")
for ours, theirs, gflop in rows:
    est = json.load(open(f"target/criterion/planet/{ours}/new/estimates.json"))
    ms = est["median"]["point_estimate"] / 1e6
    t = (before[theirs]["median_ms"], after[theirs]["median_ms"])
    ref = sum(t) / 2
    gf = gflop / (ms / 1e3)
    print(f"| `planet/{ours}` | {gflop:.2f} | {ms:.1f} ms | {gf:.0f} | {100 * gf / peak:.0f}% "
          f"| {t[0]:.1f} / {t[1]:.1f} ms | {ref / ms:.2f}x |")
PY
