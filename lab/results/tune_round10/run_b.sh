#!/usr/bin/env bash
# Tuning round 10b (issue 18): motion deblurring between s 0.03 and 0.04, 20-30 steps; sr2x and
# denoise at 20 steps. Validation split, float32; pauses a background training while it runs.
set -euo pipefail
out=lab/results/tune_round10
source lab/pause_training.sh
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --precision float32 --first 8"
python benchmarks/tune_solver.py --task motion_deblur $common --steps 20 30 --rho 3 4 --likelihood-scale 0.03 0.035 \
  --json $out/motion_deblur_b.json > $out/motion_deblur_b.log 2>&1
for task in sr2x denoise; do
  python benchmarks/tune_solver.py --task $task $common --steps 50 --json $out/${task}_50steps.json > $out/${task}_50steps.log 2>&1
  python benchmarks/tune_solver.py --task $task $common --steps 20 --rho 2 4 --json $out/${task}_20steps.json \
    > $out/${task}_20steps.log 2>&1
done
