#!/usr/bin/env bash
# Tuning round 12 (issue 42), part d: the last level sigma_min for sr4x and the deblurrings (part c
# found 0.01 best for random inpainting), and rho 4 for random inpainting. Two runners at once, one
# thread each (the suite's DPS/DAPS cells paused meanwhile).
set -euo pipefail
out=lab/results/tune_round12
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1
(run sr4x_sigma_min --task sr4x --sigma-min 0.01 0.03; run random_rho --task random_inpainting --sigma-max 0.5 --steps 20 --sigma-min 0.01 --rho 4) &
(run gaussian_sigma_min --task gaussian_deblur --sigma-min 0.01 0.03) &
wait
