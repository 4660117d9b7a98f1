#!/usr/bin/env bash
# Issue 17: the 4-level teacher's denoising PSNR / LPIPS against the shipped teacher, in one run,
# on the 32 validation crops (128x128) at t = 0.1 / 0.2 / 0.5 (measure.sh). Usage: eval.sh RUN_FOLDER TAG
# The shipped teacher's files are tagged by its weights' digest (shipped-<16 hex>), so a later
# ship does not overwrite an earlier one's (cpu-small_* are the teacher shipped until 2026-12-03).
set -euo pipefail
here=lab/results/teacher_4level
shipped=ncvsd_inverse/default_model/teacher.safetensors
digest=$(python -c "import sys; from ncvsd_inverse.models import load_teacher, weights_sha256
print(weights_sha256(load_teacher(sys.argv[1]))[:16])" "$shipped")
$here/measure.sh "$shipped" "shipped-$digest"
$here/measure.sh "$1" "$2"
