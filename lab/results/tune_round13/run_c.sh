#!/usr/bin/env bash
# Tuning round 13 (issue 42), part c: the likelihood scale as a function of the level,
# s_i = sqrt(s^2 + (growth r)^2) (lab/levers/likelihood_growth.py), on sr4x and the two
# deblurrings at their presets otherwise. One thread, as parts a and b.
set -euo pipefail
out=lab/results/tune_round13
run() { local name=$1; shift; python lab/levers/likelihood_growth.py "$@" --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1 NCVSD_DATA=/work/shared/data
while pgrep -f "tune_round13/run_[ab].sh" > /dev/null; do sleep 20; done
run sr4x_growth --task sr4x --growth 0.01 0.05 0.2
run gaussian_growth --task gaussian_deblur --growth 0.01 0.05 0.2
run motion_growth --task motion_deblur --growth 0.01 0.05 0.2
