#!/usr/bin/env bash
# Tuning round 13 (issue 42), part a: the deblurrings and sr4x started from the classical
# estimate (Wiener / TV / bicubic) at a mid noise level, so that all 20 steps sit below it
# (more of the chain where texture is drawn). One thread; the suite's DPS/DAPS cells on the other core.
set -euo pipefail
out=lab/results/tune_round13
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
export OMP_NUM_THREADS=1 NCVSD_DATA=/work/shared/data
run gaussian_start --task gaussian_deblur --init classical --sigma-max 2 5
run sr4x_start --task sr4x --init classical --sigma-max 2 5
run motion_start --task motion_deblur --init classical --sigma-max 2 5
