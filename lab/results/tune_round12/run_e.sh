#!/usr/bin/env bash
# Tuning round 12 (issue 42), part e: sr4x with an EMA of the estimates below sigma 1 (the mean's
# PSNR against the sample's LPIPS, goal 3), and rho 7 (more of the 20 steps at low noise) for sr4x
# and the two deblurrings. One thread; the suite's DPS/DAPS cells on the other core.
set -euo pipefail
out=lab/results/tune_round12
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1
run sr4x_ema --task sr4x --ema 0.3 0.6
run sr4x_rho --task sr4x --rho 7
run gaussian_rho --task gaussian_deblur --rho 7
run motion_rho --task motion_deblur --rho 7
