#!/usr/bin/env bash
# Tuning round 10 (issue 18): 20-step deblurring schedules on the validation split, float32.
# Run from the repository root; pauses a background training (SIGSTOP) while it runs.
set -euo pipefail
out=lab/results/tune_round10
source lab/pause_training.sh
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --precision float32"
for task in gaussian_deblur motion_deblur; do
  python benchmarks/tune_solver.py --task $task $common --first 8 --steps 50 --json $out/${task}_50steps.json \
    > $out/${task}_50steps.log 2>&1
  python benchmarks/tune_solver.py --task $task $common --first 8 --steps 20 --rho 2 4 --likelihood-scale 0.03 0.04 0.05 \
    --json $out/${task}_20steps.json > $out/${task}_20steps.log 2>&1
done
