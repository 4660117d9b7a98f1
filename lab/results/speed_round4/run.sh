#!/usr/bin/env bash
# Speed round 4 (issue 18): yesterday's settings (50 steps, float32) against today's (the preset's
# steps, precision auto = bfloat16 where native) side by side, then the large sizes with today's.
# Quiet CPU: pauses a background training (SIGSTOP) while it runs. Run from the repository root.
set -euo pipefail
out=lab/results/speed_round4
source lab/pause_training.sh
python benchmarks/solver_speed.py --tasks sr4x --sizes 256 768x512 --steps 50 preset --precision float32 auto \
  --json $out/sr4x_small.json > $out/sr4x_small.log 2>&1
python benchmarks/solver_speed.py --tasks sr4x --sizes 1024 2048 --steps preset --precision auto \
  --json $out/sr4x_large.json > $out/sr4x_large.log 2>&1
python benchmarks/solver_speed.py --tasks box_inpainting random_inpainting gaussian_deblur motion_deblur \
  --sizes 256 768x512 --precision auto --json $out/tasks.json > $out/tasks.log 2>&1
OMP_NUM_THREADS=1 python benchmarks/solver_speed.py --tasks sr4x --sizes 256 --steps preset --precision auto \
  --json $out/sr4x_1thread.json > $out/sr4x_1thread.log 2>&1
# (the 4000x3000 run planned here was killed as it began; run_b.sh made it after the row-space SR step)
