#!/usr/bin/env bash
# Tuning round 12 (issue 42), part b: the hybrid chain (lab/levers/hybrid_chain.py) on sr4x and the
# two deblurrings, both orders, with the pure chains as references. Validation split only: first
# 8 crops of 128x128, 2 runs, float32, shipped 4-level model, presets otherwise unchanged.
set -euo pipefail
out=lab/results/tune_round12
common="--data ../shared/data/cbsd432 --first 8 --crop 128 --runs 2"
# (only sr4x ran: its trade-off settled the question, and the deblurrings were stopped for time)
for task in sr4x; do
  python lab/levers/hybrid_chain.py --task $task $common --references --order teacher_first --switch 0.1 0.5 2.0 \
    --json $out/hybrid_$task.json > $out/hybrid_$task.log 2>&1
done
