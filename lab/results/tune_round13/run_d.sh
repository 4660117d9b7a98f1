#!/usr/bin/env bash
# Tuning round 13 (issue 42), part d: motion deblurring from sigma 10 against the preset's 80 on
# 16 validation crops (part b's 8 crops showed one-sample LPIPS 0.206 against 0.221). One thread.
set -euo pipefail
out=lab/results/tune_round13
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 16 --precision float32"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1 NCVSD_DATA=/work/shared/data
while pgrep -f "tune_round13/run_[abc].sh" > /dev/null; do sleep 20; done
run motion_sigma_max_16 --task motion_deblur --sigma-max 10 80
