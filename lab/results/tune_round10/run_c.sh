#!/usr/bin/env bash
# Tuning round 10c (issue 18): the candidates confirmed on the first 16 validation crops against
# today's presets, in float32 and in bfloat16 (precision auto on an AVX512-BF16 CPU).
set -euo pipefail
out=lab/results/tune_round10
source lab/pause_training.sh
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 16"
tune() { python benchmarks/tune_solver.py "$@" > $out/$name.log 2>&1; }
for spec in "sr4x 0.02" "gaussian_deblur 0.03" "motion_deblur 0.035" "sr2x 0.05" "denoise 0.05"; do
  set -- $spec
  name=val16_$1_50_float32 tune --task $1 $common --steps 50 --precision float32 --json $out/val16_$1_50_float32.json
  for precision in float32 bfloat16; do
    name=val16_$1_20_$precision tune --task $1 $common --steps 20 --rho 4 --likelihood-scale $2 \
      --precision $precision --json $out/val16_$1_20_$precision.json
  done
done
for task in box_inpainting random_inpainting; do
  for precision in float32 bfloat16; do
    name=val16_${task}_$precision tune --task $task $common --precision $precision --json $out/val16_${task}_$precision.json
  done
done
