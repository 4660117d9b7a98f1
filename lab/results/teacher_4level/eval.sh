#!/usr/bin/env bash
# Issue 17: the 4-level teacher's denoising PSNR / LPIPS against the shipped teacher, in one run,
# on the 32 validation crops (128x128) at t = 0.1 / 0.2 / 0.5 (measure.sh). Usage: eval.sh RUN_FOLDER TAG
set -euo pipefail
here=lab/results/teacher_4level
$here/measure.sh ncvsd_inverse/default_model/teacher.safetensors shipped
$here/measure.sh "$1" "$2"
