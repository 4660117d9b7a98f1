#!/usr/bin/env bash
# Issue 17: the 4-level teacher's denoising PSNR / LPIPS against the shipped teacher, in one run,
# on the 32 validation crops (128x128) at t = 0.1 / 0.2 / 0.5. Usage: eval.sh RUN_FOLDER TAG
set -euo pipefail
out=lab/results/teacher_4level
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --levels 0.1 0.2 0.5"
python benchmarks/denoising_quality.py $common --json $out/shipped_val32.json > $out/shipped_val32.log 2>&1
python benchmarks/denoising_quality.py $common --teacher "$1" --json $out/$2_val32.json > $out/$2_val32.log 2>&1
