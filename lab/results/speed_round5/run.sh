#!/usr/bin/env bash
# Speed round 5 (issue 18): the fused residual block; time per pixel from 256^2 to 2048^2 in
# the sr4x solve (20-step preset, precision auto), one run, quiet CPU (training paused).
set -euo pipefail
cd "$(dirname "$0")/../../.."
source lab/pause_training.sh
out=lab/results/speed_round5
# (fused_block_ab.jsonl was made by: python lab/levers/fused_block/ab.py 256,1024,2048 3)
python benchmarks/solver_speed.py --tasks sr4x --sizes 256 512 1024 2048 --json $out/sr4x_sizes.json 2>&1 \
    | grep -v Warning | tee $out/sr4x_sizes.log
