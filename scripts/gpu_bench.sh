#!/usr/bin/env bash
# Planning and model-update speed on a GPU against the CPU, in one run: the criterion bench
# agents/planet_dcem/benches/gpu.rs (the RSSM at the paper's sizes; full CEM 1000/100/10 and
# latent DCEM 100/10/10 at horizon 12, planning batches of 1, 16 and 256 start states in one
# call; one model update on a [50 x 50] batch), then a table of plans per second.
#
#   scripts/gpu_bench.sh build   # on a machine with cargo: builds the bench binary with the
#                                # `wgpu` feature (release) into target/gpu-bench/, with the
#                                # Vulkan loader (libvulkan.so.1) beside it
#   scripts/gpu_bench.sh run     # on the GPU machine; builds nothing: runs target/gpu-bench/gpu
#                                # on the CPU (2 threads, the project's machine) at batch 1 and
#                                # on wgpu at every batch, and prints and writes the table
#
# `run` takes criterion's 10 samples of each (DCEM_BENCH_SECONDS=5 per benchmark, longer where
# one sample takes longer): the CPU part about 1 minute on 2 threads; the GPU part is not timed
# on a GPU yet (on lavapipe, Vulkan on the CPU, a full-CEM plan took 25 s).
# Environment: DCEM_BENCH_BATCHES (default 1,16,256), DCEM_BENCH_SECONDS, CPU_THREADS (default 2).
# Writes target/gpu-bench/{cpu,wgpu}.txt and summary.md; also into $OUT when that is set.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/gpu-bench
case "${1:-}" in
build)
    mkdir -p "$dir/lib"
    cargo bench -p planet-dcem --features wgpu --bench gpu --no-run --message-format=json \
        > "$dir/build.json"
    bin=$(grep -o '"executable":"[^"]*/gpu-[0-9a-f]*"' "$dir/build.json" | tail -n 1 | cut -d'"' -f4)
    [ -x "$bin" ] || { echo "gpu_bench: cargo built no bench binary (see $dir/build.json)" >&2; exit 1; }
    cp "$bin" "$dir/gpu"
    # Without symbols the binary is about 60 MB instead of 83: small enough to carry.
    strip --strip-all "$dir/gpu" 2>/dev/null || echo "gpu_bench: strip failed; the binary keeps its symbols" >&2
    loader=$(ldconfig -p | awk '/libvulkan\.so\.1 /{print $NF; exit}')
    if [ -n "$loader" ]; then
        cp -L "$loader" "$dir/lib/libvulkan.so.1"
    else
        echo "gpu_bench: no libvulkan.so.1 here to carry (scripts/setup_vulkan.sh installs it);" \
            "the GPU machine must have its own" >&2
    fi
    rm -f "$dir/build.json"
    du -sh "$dir"
    echo "built $dir/gpu; carry $dir to the GPU machine and run: scripts/gpu_bench.sh run"
    ;;
run)
    [ -x "$dir/gpu" ] || {
        echo "gpu_bench: no $dir/gpu: run 'scripts/gpu_bench.sh build' where cargo is, then" \
            "carry $dir" >&2
        exit 1
    }
    export LD_LIBRARY_PATH="$PWD/$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export DCEM_BENCH_CONFIG=configs/planet_cheetah_run.toml
    command -v nvidia-smi >/dev/null &&
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    RAYON_NUM_THREADS="${CPU_THREADS:-2}" DCEM_BENCH_DEVICES=cpu "$dir/gpu" --bench \
        2> "$dir/cpu.err" | tee "$dir/cpu.txt"
    DCEM_BENCH_DEVICES=wgpu "$dir/gpu" --bench 2> "$dir/wgpu.err" | tee "$dir/wgpu.txt"
    grep -h "skipping" "$dir/wgpu.err" >&2 || true
    python3 - "$dir" "${CPU_THREADS:-2}" <<'PY' | tee "$dir/summary.md"
import re, sys
d, threads = sys.argv[1], sys.argv[2]
unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
rows = {}
for dev in ("cpu", "wgpu"):
    name = None
    for line in open(f"{d}/{dev}.txt", encoding="utf-8"):
        m = re.match(r"^gpu/(\S+)", line)
        if m:
            name = m.group(1)
        m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if m and name:
            rows[name] = float(m.group(1)) * unit[m.group(2)]
            name = None
def get(what, dev, batch=None):
    key = f"{what}/{dev}" + (f"/batch{batch}" if batch else "")
    return rows.get(key)
print(f"| measured | cpu ({threads} threads) | wgpu | wgpu / cpu |")
print("|---|---|---|---|")
up = (get("model_update_50x50", "cpu"), get("model_update_50x50", "wgpu"))
fmt = lambda t: "-" if t is None else f"{1e3 * t:.1f} ms"
print(f"| model update, [50 x 50] batch | {fmt(up[0])} | {fmt(up[1])} | "
      + ("-" if None in up else f"{up[0] / up[1]:.3g}x") + " |")
for what, label in (("plan_full_cem_1000x10_h12", "full CEM"),
                    ("plan_latent_dcem_100x10_h12", "latent DCEM")):
    cpu1 = get(what, "cpu", 1)
    for b in (1, 16, 256):
        c, g = get(what, "cpu", b), get(what, "wgpu", b)
        if c is None and g is None:
            continue
        num = lambda v: f"{v:,.0f}" if v >= 100 else (f"{v:.1f}" if v >= 1 else f"{v:.3f}")
        rate = lambda t: "-" if t is None else f"{num(b / t)} plans/s"
        ratio = "-" if g is None or cpu1 is None else f"{num((b / g) / (1 / cpu1))}x"
        print(f"| {label}, batch {b} | {rate(c)} | {rate(g)} | {ratio} |")
print()
print("wgpu / cpu: plans per second on wgpu over the CPU's at batch 1.")
PY
    if [ -n "${OUT:-}" ]; then
        cp "$dir"/cpu.txt "$dir"/wgpu.txt "$dir"/summary.md "$dir"/*.err "$OUT"/
    fi
    ;;
*)
    echo "usage: scripts/gpu_bench.sh build|run (see the comment at the top)" >&2
    exit 2
    ;;
esac
