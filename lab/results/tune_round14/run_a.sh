#!/usr/bin/env bash
# Tuning round 14 (issue 42), part a: a schedule for 50 steps. The suite's 50-step rows run the
# 20-step presets with only the step count changed and lose to 20 steps in both PSNR and LPIPS.
# Grid: rho 2 (the paper's) or the preset's, and the EMA of the estimates below sigma 1 (decay
# 0.6, the paper's mu) or none. One thread; the suite's DPS/DAPS cells on the other core.
set -euo pipefail
out=lab/results/tune_round14
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32 --steps 50"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1 NCVSD_DATA=/work/shared/data
run sr4x_50 --task sr4x --rho 2 4 --ema 0 0.6
run motion_50 --task motion_deblur --rho 2 7 --ema 0 0.6
run gaussian_50 --task gaussian_deblur --rho 2 4 --ema 0 0.6
