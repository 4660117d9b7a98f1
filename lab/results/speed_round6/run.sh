#!/usr/bin/env bash
# Speed round 6 (issue 17): the shipped 4-level model against the cpu-small model it replaced,
# sr4x with the 20-step preset in --precision auto, side by side in one run on a quiet CPU; then
# the README's main job, timed whole (start-up included). Run from the repository root.
set -euo pipefail
out=lab/results/speed_round6
python benchmarks/solver_speed.py --tasks sr4x --sizes 256 768x512 --precision auto float32 \
  --json $out/sr4x_4level.json > $out/sr4x_4level.log 2>&1
python benchmarks/solver_speed.py --model lab/models/cpu-small/generator.safetensors --tasks sr4x \
  --sizes 256 768x512 --precision auto float32 --json $out/sr4x_cpu-small.json > $out/sr4x_cpu-small.log 2>&1
{ /usr/bin/time -f "wall %e s, max RSS %M kB" ncvsd-solve --task sr4x examples/tiger_sr4x.png -o /tmp/tiger_x4.png; } \
  > $out/main_job.log 2>&1
