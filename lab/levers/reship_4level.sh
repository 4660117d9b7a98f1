#!/usr/bin/env bash
# Issue 17: everything a new shipped 4-level model needs, from a teacher run, as one resumable
# background job on the CPU. On a 2-core Intel Xeon with AMX-BF16 (2026-12-05, bfloat16): the
# distillation from stage 1's step 829 to 2200 in 49 min (1.7-2.0 s/step with --compile), the
# tables 2.5 min, the CBSD68 report 24 min; goal 4's suite not yet timed (about 45 min of the
# old float32 cells' time). 3-5x longer on an AVX2-only CPU, in float32. Run from the
# repository root:
#
#   nohup bash lab/levers/reship_4level.sh runs/teacher-4level runs/reship >> runs/reship.log 2>&1 &
#
# Stop it with
#   pkill -TERM -f "bin/ncvsd-(distill|bench) "; pkill -TERM -f "^bash lab/levers/reship_4level"
# (the running distillation checkpoints, a suite keeps its finished cells, and the script exits
# once its foreground command has); run the same command again to go on. Across sessions,
# lab/levers/reship_keep.sh keeps what resuming needs in lab/runs/reship/ (commit it); its header
# says how to go on. Each step is skipped once its output is there. Steps, all under OUT:
#   teacher/        the teacher run's EMA as a model file, taken once (the run may train on)
#   ncvsd-4level-*  the shipped four-stage distillation from it (distill_4level_chain.sh, --compile)
#   model/          teacher + generator (step 2200 of stage 4): what would go to
#                   ncvsd_inverse/default_model/
#   teacher_val32.json, teacher_cbsd68.json  the teacher's denoising PSNR / LPIPS (the model card's
#                   teacher table; the old teacher's numbers are committed and deterministic)
#   generator_diagnostic_val.json  the generator diagnostic on val32 (goal 2)
#   cbsd68-report/  the record, the same seeds as the committed one
#                   (the report with --precision auto: bfloat16 like the committed one where it is
#                   native; on an AVX2-only CPU float32, which the committed report's PSNR matched to
#                   0.01 dB, and everything here takes 3-5x longer)
#   goal4-quick/    issue 17's goal 4: NCVSD against the teacher's chain at 20 and 50 NFE on
#                   cbsd68-quick's images and seeds (lab/levers/goal4-quick.yaml; the peers of
#                   cbsd68-quick, 5-6 CPU hours more, are not in it)
# Then, by hand: compare with the committed tables (`python lab/levers/reship_compare.py OUT`),
# copy model/ into ncvsd_inverse/default_model/ (with the old one moved to lab/models/), the JSON
# and suite folders into benchmarks/results/, and rewrite the README's and MODEL_CARD.md's tables, naming the digests.
set -euo pipefail
trap 'echo "stopped by SIGTERM"; exit 143' TERM
[ $# -eq 2 ] || { echo "usage: $0 TEACHER_RUN OUT" >&2; exit 2; }
teacher_run=$1 out=$2
mkdir -p "$out"
teacher=$out/teacher/teacher.safetensors
generator=$out/model/generator.safetensors
val32="--data ../shared/data/cbsd432 --list benchmarks/splits/cbsd432_val32.txt --crop 128"

step() { echo "== $(date -u '+%F %T') $*"; }

[ -e "$teacher" ] || { step "teacher from $teacher_run"; ncvsd-export --teacher "$teacher_run" --out "$out/teacher"; }

source "$(dirname "$0")/distill_4level_stages.sh"
step "distillation"
TEACHER=$teacher RUNS=$out EXTRA="--compile" bash lab/levers/distill_4level_chain.sh

if [ ! -e "$generator" ]; then
  step "export"
  read -r last_stage _ last_step <<<"${STAGES[-1]}"
  ncvsd-export --generator "$(final_checkpoint "$out/$last_stage" "$last_step")" --out "$out/model"
  cp "$out/teacher/teacher.safetensors" "$out/teacher/teacher.json" "$out/model/"
fi

[ -e "$out/teacher_val32.json" ] || { step "teacher, val32"
  python benchmarks/denoising_quality.py $val32 --levels 0.1 0.2 0.5 --teacher "$teacher" \
    --json "$out/teacher_val32.json"; }
[ -e "$out/teacher_cbsd68.json" ] || { step "teacher, CBSD68 (first 16, 256x256)"
  python benchmarks/denoising_quality.py --data ../shared/data/cbsd68 --limit 16 --crop 256 \
    --levels 0.05 0.1 0.2 0.5 --teacher "$teacher" --json "$out/teacher_cbsd68.json"; }
[ -e "$out/generator_diagnostic_val.json" ] || { step "generator diagnostic, val32"
  python benchmarks/denoising_quality.py $val32 --teacher "$teacher" --generator "$generator" \
    --json "$out/generator_diagnostic_val.json"; }

step "cbsd68-report"
ncvsd-bench cbsd68-report --generator "$generator" --teacher "$teacher" --precision auto \
  --out "$out/cbsd68-report" --resume --quiet
step "goal4-quick"
ncvsd-bench lab/levers/goal4-quick.yaml --generator "$generator" --teacher "$teacher" --precision auto \
  --out "$out/goal4-quick" --resume --quiet
step "all done: $out"
