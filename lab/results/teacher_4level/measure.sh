#!/usr/bin/env bash
# The denoising PSNR / LPIPS of one teacher (a model file, or a run's checkpoint or folder: its EMA)
# on the 32 validation crops (128x128) at t = 0.1 / 0.2 / 0.5, into TAG_val32.{json,log} here.
# eval.sh measures the shipped teacher and a run with it; alone it measures a run without
# rerunning the shipped teacher, whose numbers are deterministic. Usage: measure.sh TEACHER TAG
set -euo pipefail
out=lab/results/teacher_4level
python benchmarks/denoising_quality.py --data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt \
    --crop 128 --levels 0.1 0.2 0.5 --teacher "$1" --json "$out/$2_val32.json" > "$out/$2_val32.log" 2>&1
tail -5 "$out/$2_val32.log"
