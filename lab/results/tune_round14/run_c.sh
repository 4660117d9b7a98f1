#!/usr/bin/env bash
# Tuning round 14 (issue 42), part c: if the generator's errors add up over the low-noise steps,
# 50 steps should do better still with fewer of them: rho 1 (evenly spaced levels) on sr4x.
set -euo pipefail
out=lab/results/tune_round14
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32 --steps 50 --ema 0"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1 NCVSD_DATA=/work/shared/data
run sr4x_50_rho1 --task sr4x --rho 1
