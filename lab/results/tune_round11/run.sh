#!/usr/bin/env bash
# Tuning round 11 (issue 17): the presets' likelihood scales and inpainting starts rechecked for the
# shipped 4-level model (generator 0d49a144d3cf97d6, teacher 792f93cfb7dff082), on the validation
# split only: first 8 crops of 128x128, mean of 2 runs, float32, the grid around each preset's value.
# Run from the repository root on a quiet CPU.
set -euo pipefail
out=lab/results/tune_round11
common="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128 --runs 2 --first 8 --precision float32"
run() { local name=$1; shift; python benchmarks/tune_solver.py "$@" $common --json $out/$name.json > $out/$name.log 2>&1; }
run sr4x --task sr4x --likelihood-scale 0.015 0.02 0.03
run gaussian_deblur --task gaussian_deblur --likelihood-scale 0.025 0.03 0.04
run motion_deblur --task motion_deblur --likelihood-scale 0.03 0.035 0.045
run random_inpainting --task random_inpainting --sigma-max 0.05 0.1 --steps 10 20
run box_inpainting --task box_inpainting --sigma-max 0.05 0.2 0.5 --steps 10 20
# after the first pass: Gaussian deblurring's PSNR still rose at s 0.04, so one step further
run gaussian_deblur_b --task gaussian_deblur --likelihood-scale 0.05
