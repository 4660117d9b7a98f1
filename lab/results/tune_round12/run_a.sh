#!/usr/bin/env bash
# Tuning round 12 (issue 42), part a: random inpainting for the perceptual sample. Validation split
# only: first 8 crops of 128x128, 2 runs (mean of 2 / one sample), float32, shipped 4-level model.
# One thread (OMP_NUM_THREADS=1): the suite's DPS/DAPS cells ran beside it on the other core.
set -euo pipefail
out=lab/results/tune_round12
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
run random_start --task random_inpainting --sigma-max 0.2 0.5 1.0 --steps 10 20
run random_noise --task random_inpainting --init zero --sigma-max 80 --rho 4 --steps 20 --likelihood-scale 0.01 0.03 0.05
