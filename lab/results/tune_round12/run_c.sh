#!/usr/bin/env bash
# Tuning round 12 (issue 42), part c: random inpainting from the biharmonic fill at sigma_max 0.5 in
# 20 steps (part a's lowest LPIPS), with the likelihood scale s nearer the measurement noise
# (sigma_y 0.05; the preset's s 0.01 over-trusts the noisy known pixels) and a higher last level.
set -euo pipefail
out=lab/results/tune_round12
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
run random_scale --task random_inpainting --sigma-max 0.5 --steps 20 --likelihood-scale 0.02 0.035 0.05
run random_sigma_min --task random_inpainting --sigma-max 0.5 --steps 20 --sigma-min 0.01 0.03
