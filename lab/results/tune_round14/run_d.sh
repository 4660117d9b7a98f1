#!/usr/bin/env bash
# Tuning round 14 (issue 42), part d: Gaussian deblurring's reference at 50 steps, its 20-step
# settings (rho 4) with only the step count changed, as the suite's 50-step row ran it.
set -euo pipefail
out=lab/results/tune_round14
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32 --steps 50 --ema 0"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1 NCVSD_DATA=/work/shared/data
run gaussian_50_rho4 --task gaussian_deblur --rho 4
