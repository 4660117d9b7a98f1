#!/usr/bin/env bash
# Issue 17: the best 4-level generator so far (lab/runs/ncvsd-4level, step 2200, digest
# 0d49a144d3cf97d6) from the 4-level teacher, as four stages run one after another, each
# resumable. Run from the repository root, in the background:
#
#   nohup nice -n 5 bash lab/levers/distill_4level_chain.sh >> runs/ncvsd-4level-chain.log 2>&1 &
#
# The teacher is the shipped one (the EMA weights of step 12000 of lab/runs/teacher-4level, which
# has since trained on: TEACHER=lab/runs/teacher-4level distils from where it stands now).
#
# Stop it with `pkill -TERM -f ncvsd-distill`: the running stage checkpoints and the chain stops
# (a stage only starts once the previous one wrote its last checkpoint). Run it again to go on.
#   stage 1: cpu-4level (the cpu-small recipe) to step 1200            -> runs/ncvsd-4level-s1
#   stage 2: cpu-4level-mean4 (posterior-mean term 4) to 1400          -> runs/ncvsd-4level-mean4
#   stage 3: cpu-4level-fakelr (low generator lr, half the fake
#            score's lr) to 1600                                       -> runs/ncvsd-4level-mean4-fakelr
#   stage 4: cpu-4level-mean16 (term 16) to 2200                       -> runs/ncvsd-4level-mean16
# The packaged presets are the lab's distill-4level*.yaml of this folder (the configurations as
# run), with each stage's end step as its `steps`.
# The committed run made these stages as branches, each from the best checkpoint of the one before,
# on the 2-core CPU (results/ncvsd_4level/README.md); its stage 1 was also resumed once from a slim
# checkpoint at step 1063, so a rerun is close to it, not identical. Each later stage drifts
# towards noisy samples at sigma 0.5 if run past its end step.
# Elsewhere (gpu_teacher.sh on a lent GPU): TEACHER (run folder or checkpoint), DATA, RUNS (where
# the four stage folders go), DISTILL (the command) and EXTRA (more options, e.g. --quiet).
set -euo pipefail
# SIGTERM to the whole group (pkill, timeout): the stage running finishes its step and checkpoints;
# with this trap the shell waits for it (a trap runs once the foreground command has returned)
# instead of exiting at once and leaving it behind.
trap 'echo "stopped by SIGTERM"; exit 143' TERM
TEACHER=${TEACHER:-ncvsd_inverse/default_model/teacher.safetensors}
DATA=${DATA:-../shared/data/cbsd432}
RUNS=${RUNS:-runs}
read -r -a distill <<<"${DISTILL:-ncvsd-distill}"
read -r -a extra <<<"${EXTRA:-}"
common=(--teacher "$TEACHER" --data "$DATA" --exclude benchmarks/splits/cbsd432_train_exclude.txt
        --val-data "$DATA" --val-list benchmarks/splits/cbsd432_val32.txt --precision auto ${extra[@]+"${extra[@]}"})

source "$(dirname "$0")/distill_4level_stages.sh"

# stage OUT PRESET STEPS INIT: resume OUT if it has a checkpoint, else start it from INIT;
# succeed only when OUT holds the checkpoint of step STEPS.
stage() {
  local out=$1 preset=$2 steps=$3 init=$4 final
  final=$(final_checkpoint "$out" "$steps")
  [ -e "$final" ] && return 0
  if [ -e "$out/latest.safetensors" ]; then
    "${distill[@]}" "${common[@]}" --preset "$preset" --out "$out" --resume --steps "$steps"
  else
    "${distill[@]}" "${common[@]}" --preset "$preset" --out "$out" ${init:+--init-from "$init"} --steps "$steps"
  fi
  [ -e "$final" ] || { echo "stopped before step $steps of $out"; return 1; }
}

first=$(newest_stage "$RUNS")  # a stage is done once a later one has begun
init=""
for i in "${!STAGES[@]}"; do
  read -r name preset steps <<<"${STAGES[$i]}"
  [ "$i" -ge "$first" ] && stage "$RUNS/$name" "$preset" "$steps" "$init"
  init=$(final_checkpoint "$RUNS/$name" "$steps")
done
echo "all four stages done: $init"
