#!/usr/bin/env bash
# Issue 17: the 4-level generator against the shipped model, in one run, for the ship-or-not
# decision. Usage, from the repository root: eval.sh GENERATOR TEACHER TAG
#   GENERATOR: a distillation checkpoint or run folder (e.g. runs/ncvsd-4level-mean4)
#   TEACHER:   its teacher (runs/teacher-4level)
# Writes under lab/results/ncvsd_4level/:
#   TAG_diag_val32.{json,log}, shipped_diag_val32.{json,log}  the generator diagnostic (goal 2),
#       32 validation crops of 128x128, sigma 0.2 / 0.5
#   TAG_quick/, shipped_quick/  cbsd68-quick's ncvsd and pnp_teacher cells (goals 3-4; CPU hours
#       for the new model: rerun with the same arguments to continue, finished cells are kept)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 GENERATOR TEACHER TAG" >&2; exit 2; }
generator=$1 teacher=$2 tag=$3
out=lab/results/ncvsd_4level
diag="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128"
[ -e $out/shipped_diag_val32.json ] ||
  python benchmarks/denoising_quality.py $diag --generator default --json $out/shipped_diag_val32.json \
    > $out/shipped_diag_val32.log 2>&1
python benchmarks/denoising_quality.py $diag --teacher "$teacher" --generator "$generator" \
  --json "$out/${tag}_diag_val32.json" > "$out/${tag}_diag_val32.log" 2>&1
# the shipped model's cells start from the committed ones (same seeds; changed settings rerun)
[ -e $out/shipped_quick/cells ] || { mkdir -p $out/shipped_quick && cp -r benchmarks/results/cbsd68-quick/cells $out/shipped_quick/; }
ncvsd-bench cbsd68-quick --methods ncvsd,pnp_teacher --out $out/shipped_quick --resume --quiet
ncvsd-bench cbsd68-quick --methods ncvsd,pnp_teacher --generator "$generator" --teacher "$teacher" \
  --out "$out/${tag}_quick" --resume --quiet
