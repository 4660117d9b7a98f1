#!/usr/bin/env bash
# Tuning round 14 (issue 42), part b. Part a (sr4x and motion deblurring at 50 steps): rho 2 beats
# the presets' rho, but 50 steps still lose to 20; motion deblurring's EMA grid was stopped (the
# EMA cost sr4x 0.02 LPIPS in the sample). 50 likelihood steps pull towards the data 2.5x as often
# as 20, so a looser likelihood scale: around s_20 sqrt(50 / 20).
set -euo pipefail
out=lab/results/tune_round14
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32 --steps 50 --rho 2 --ema 0"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1 NCVSD_DATA=/work/shared/data
run sr4x_50_scale --task sr4x --likelihood-scale 0.03 0.04
run motion_50_scale --task motion_deblur --likelihood-scale 0.05 0.07
run gaussian_50_scale --task gaussian_deblur --likelihood-scale 0.04 0.06
