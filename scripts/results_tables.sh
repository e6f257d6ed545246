#!/usr/bin/env bash
# Regenerates the results tables (and their plots) that the README and the docs quote, from the
# raw run files committed under docs/results (config.toml, metrics.csv, eval.json of every run).
# Each command below is the one that made its table; agents/planet_dcem/tests/results_tables.rs
# runs this script into a temporary folder and fails when a regenerated table differs from the
# committed one, or when a table quoted in the README or docs/ differs from its file.
#
# Usage: scripts/results_tables.sh [OUT]   (OUT: where the tables go, default docs/results)
# Environment: the agents' binaries, PLANET_DCEM, CARTPOLE_EMBED, PPO and REGRESSION_EBM
# (defaults target/release/<binary>; build them with `cargo build --release --workspace`).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-docs/results}"
need() { # binary, package, variable
  if [ ! -x "$1" ]; then
    echo "error: $1 not found: run cargo build --release -p $2 or set $3" >&2
    exit 1
  fi
}
PLANET="${PLANET_DCEM:-target/release/planet_dcem}"
EMBED="${CARTPOLE_EMBED:-target/release/cartpole_embed}"
PPO_BIN="${PPO:-target/release/ppo}"
REGRESSION="${REGRESSION_EBM:-target/release/regression_ebm}"
need "$PLANET" planet-dcem PLANET_DCEM
need "$EMBED" cartpole-embed CARTPOLE_EMBED
need "$PPO_BIN" ppo-agent PPO
need "$REGRESSION" regression-ebm REGRESSION_EBM
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
R=docs/results/planet
mkdir -p "$OUT/planet"

# The main job (configs/planet_swingup.toml) over training seeds 0-9: per seed, then the mean,
# median and IQM with bootstrap intervals and the failed seeds, against the true-model bound of
# its planner (`planet_dcem true-model --config configs/planet_swingup.toml --episodes 10 --out
# docs/results/planet/swingup_true_model_icem.json`; swingup_true_model.json is that of CEM
# 500/50/5, the planner of the levers below).
if [ -d "$R/swingup_seeds" ]; then
  "$PLANET" seeds --summarise-only --config configs/planet_swingup.toml \
    --runs-dir "$R/swingup_seeds" --name planet_swingup --seeds 0,1,2,3,4,5,6,7,8,9 \
    --at 10,25,50 --true-model "$R/swingup_true_model_icem.json" \
    --summary-dir "$OUT/planet/swingup_seeds/planet_swingup_seeds" > /dev/null
fi

# The RSSM agent over training seeds 0-9 as configs/planet_swingup_rssm.toml was before its
# third lever round (symlog observations, 4 updates per step); its config is the runs' own.
if [ -d "$R/swingup_rssm_seeds_10" ]; then
  "$PLANET" seeds --summarise-only \
    --config "$R/swingup_rssm_seeds_10/planet_swingup_rssm_s0/config.toml" \
    --runs-dir "$R/swingup_rssm_seeds_10" --name planet_swingup_rssm --seeds 0,1,2,3,4,5,6,7,8,9 \
    --at 10,25,50 --true-model "$R/swingup_true_model_icem.json" \
    --summary-dir "$OUT/planet/swingup_rssm_seeds_10/planet_swingup_rssm_seeds" > /dev/null
fi

# The RSSM agent before its lever study (CEM 500/50/5, kl_scale 1, 100 episodes) over training
# seeds 0-2; its config is the runs' own.
if [ -d "$R/swingup_rssm_seeds" ]; then
  "$PLANET" seeds --summarise-only \
    --config "$R/swingup_rssm_seeds/planet_swingup_rssm_s0/config.toml" \
    --runs-dir "$R/swingup_rssm_seeds" --name planet_swingup_rssm --seeds 0,1,2 \
    --at 25,50,100 --true-model "$R/swingup_true_model.json" \
    --summary-dir "$OUT/planet/swingup_rssm_seeds/planet_swingup_rssm_seeds" > /dev/null
fi

# The RSSM's lever study on the swing-up (docs/results/planet/rssm_levers.md): one row per
# config over its seeds' runs (scripts/levers_table.py).
L="$R/rssm_levers"
mkdir -p "$OUT/planet/rssm_levers"
python3 scripts/levers_table.py \
  "kl_scale 1 (before)=$L/rssm_icem_s0,$L/rssm_icem_s1" \
  "kl_scale 0.1=$L/ks01_s0,$L/ks01_s1" \
  "kl_scale 0.03=$L/ks003_s0,$L/ks003_s1" \
  "kl_scale 0.01=$L/ks001_s0,$L/ks001_s1" \
  "kl_scale 0.003=$L/ks0003_s0,$L/ks0003_s1" \
  "kl_scale 0.001=$L/ks0001_s0" \
  "kl_scale 0.01, kl_balance 0.8=$L/ks001bal_s0,$L/ks001bal_s1" \
  "kl_scale 0.01, overshoot 12=$L/ks001os12_s0" \
  "kl_scale 0.01, no symlog (stopped at 25)=$L/ks001raw_s0" \
  "kl_scale 1, overshoot 12=$L/os12_s0" \
  "prior 1, posterior 0.01 (kl_scale 1.01, kl_balance 0.99)=$L/bal100_s0,$L/bal100_s1" \
  "prior 0.25, posterior 0.01 (kl_scale 0.26, kl_balance 0.96)=$L/bal25_s0,$L/bal25_s1" \
  "prior 0.04, posterior 0.01 (kl_scale 0.05, kl_balance 0.8)=$L/bal04_s0,$L/bal04_s1" \
  "the same, seeds 0-9=$(printf "$L/bal04_s%s," 0 1 2 3 4 5 6 7 8 9 | sed 's/,$//')" \
  "kl_scale 0.01, seeds 0-9 (swingup_rssm_seeds_10)=$(printf "$R/swingup_rssm_seeds_10/planet_swingup_rssm_s%s," 0 1 2 3 4 5 6 7 8 9 | sed 's/,$//')" \
  "kl_scale 0.01, 8 updates per step=$L/upd8_s0,$L/upd8_s1" \
  "prior 0.04, posterior 0.01, 8 updates per step=$L/bal04upd8_s0,$L/bal04upd8_s1" \
  "kl_scale 0.01, 128/8/128=$L/big128_s0,$L/big128_s1" \
  "kl_scale 0.01, min_std 0.01=$L/minstd001_s0,$L/minstd001_s1" \
  "kl_scale 0.01, standardised observations=$L/std_s0,$L/std_s1" \
  "kl_scale 0.01, standardised observations, 8 updates per step=$L/stdupd8_s0,$L/stdupd8_s1" \
  "the same, seeds 0-9 (configs/planet_swingup_rssm.toml)=$(printf "$L/stdupd8_s%s," 0 1 2 3 4 5 6 7 8 9 | sed 's/,$//')" \
  "the same at Adam's learning rate 3e-4 (1e-3 elsewhere)=$L/stdupd8lr3_s0,$L/stdupd8lr3_s1" \
  "kl_scale 0.003, standardised observations, 8 updates per step=$L/stdupd8kl003_s0,$L/stdupd8kl003_s1" \
  "kl_scale 0.002, standardised observations, 8 updates per step=$L/stdupd8kl002_s0,$L/stdupd8kl002_s1" \
  > "$OUT/planet/rssm_levers/table.md"
# The KL-balanced lever over training seeds 0-9, summarised as the protocol reports seeds.
"$PLANET" seeds --summarise-only --config "$L/bal04_s0/config.toml" \
  --runs-dir "$L" --name bal04 --seeds 0,1,2,3,4,5,6,7,8,9 \
  --at 10,25,50 --true-model "$R/swingup_true_model_icem.json" \
  --summary-dir "$OUT/planet/rssm_levers/bal04_seeds" > /dev/null
# Standardised observations with 8 updates per step over training seeds 0-9: the runs of
# configs/planet_swingup_rssm.toml (their run names aside).
"$PLANET" seeds --summarise-only --config "$L/stdupd8_s0/config.toml" \
  --runs-dir "$L" --name stdupd8 --seeds 0,1,2,3,4,5,6,7,8,9 \
  --at 10,25,50 --true-model "$R/swingup_true_model_icem.json" \
  --summary-dir "$OUT/planet/rssm_levers/stdupd8_seeds" > /dev/null

# The main job's levers measured over the same seeds (docs/results/planet/swingup_levers.md):
# each folder seeds_<lever>/ holds the ten runs of one config (their config.toml says which).
for d in "$R"/swingup_levers/seeds_*/; do
  [ -d "$d" ] || continue
  lever="$(basename "$d")"
  "$PLANET" seeds --summarise-only --config "$d/planet_swingup_s0/config.toml" \
    --runs-dir "$d" --name planet_swingup --seeds 0,1,2,3,4,5,6,7,8,9 \
    --at 10,25,50 --true-model "$R/swingup_true_model.json" \
    --summary-dir "$OUT/planet/swingup_levers/$lever/planet_swingup_seeds" > /dev/null
done

# cheetah.run and walker.walk at 100k simulator steps against the published anchors
# (configs/published_dmc.toml), drawn up to 200k simulator steps: TD-MPC2's and SAC's first
# point (their step 100k at action repeat 2) is at 200k.
"$PLANET" compare --task cheetah_run \
  --run "$R/cheetah_run_100k_ensemble" --run "$R/cheetah_run_100k_ensemble_run2" \
  --run "$R/cheetah_run_100k_rssm" \
  --run "$R/cheetah_run_100k_rssm_std" \
  --seeds "$R/seeds_50k/cheetah_run_ens_50k_s0,$R/seeds_50k/cheetah_run_ens_50k_s1,$R/seeds_50k/cheetah_run_ens_50k_s2" \
  --seeds "$R/seeds_50k/cheetah_run_value_50k_s0,$R/seeds_50k/cheetah_run_value_50k_s1,$R/seeds_50k/cheetah_run_value_50k_s2" \
  --seeds "$R/cheetah_run_100k_value,$R/seeds_100k/cheetah_run_value_100k_s1,$R/seeds_100k/cheetah_run_value_100k_s2" \
  --max-steps 200000 --out "$OUT/planet/cheetah_run_100k.png" > /dev/null
"$PLANET" compare --task walker_walk \
  --run "$R/walker_walk_100k_ensemble" --run "$R/walker_walk_100k_value" \
  --seeds "$R/seeds_50k/walker_walk_value_50k_s0,$R/seeds_50k/walker_walk_value_50k_s1,$R/seeds_50k/walker_walk_value_50k_s2" \
  --seeds "$R/walker_walk_100k_value,$R/seeds_100k/walker_walk_value_100k_s1,$R/seeds_100k/walker_walk_value_100k_s2" \
  --max-steps 200000 --out "$OUT/planet/walker_walk_100k.png" > /dev/null
# cartpole_embed's default config over training seeds 0-9: the best decoders
# (checkpoints/best.safetensors) measured again on the reference's validation states, and the
# baselines solved again on both sets (`cartpole_embed seeds` writes the summary beside the run
# folders, so it runs on a copy).
E=docs/results/cartpole_embed/seeds_default_10
mkdir -p "$TMP/embed" "$OUT/cartpole_embed/seeds_default_10"
cp -r "$E"/cartpole_embed_s* "$TMP/embed/"
"$EMBED" seeds --summarise-only --seeds 0,1,2,3,4,5,6,7,8,9 --runs-dir "$TMP/embed" \
  --also-on data/cartpole_ref_val_states.json > /dev/null
cp "$TMP/embed/cartpole_embed_seeds/summary.md" "$OUT/cartpole_embed/seeds_default_10/summary.md"

# Plain PPO on the continuous CartPole (configs/ppo_cartpole.toml) over training seeds 0-9.
"$PPO_BIN" seeds --summarise-only --seeds 0,1,2,3,4,5,6,7,8,9 --runs-dir docs/results/ppo/seeds \
  --summary-dir "$OUT/ppo/seeds/ppo_cartpole_seeds" > /dev/null

# The energy-based regression, unrolled GD against DCEM, over training seeds 0-9 (each seed's
# comparison folder holds both runs' metrics.csv and analysis.json).
"$REGRESSION" seeds --summarise-only --seeds 0,1,2,3,4,5,6,7,8,9 \
  --runs-dir docs/results/regression/seeds \
  --summary-dir "$OUT/regression/seeds/regression_compare_seeds" > /dev/null
echo "tables written under $OUT"
