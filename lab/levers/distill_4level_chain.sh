#!/usr/bin/env bash
# Issue 17: the 4-level generator's three distillation stages (the shipped recipe, MODEL_CARD.md)
# run one after another, each resumable. Run from the repository root, in the background:
#
#   mkdir -p runs && cp -r lab/runs/teacher-4level lab/runs/ncvsd-4level runs/   # first time only
#   nohup nice -n 5 bash lab/levers/distill_4level_chain.sh >> runs/ncvsd-4level.log 2>&1 &
#
# Stop it with `pkill -TERM -f ncvsd-distill`: the running stage checkpoints and the chain stops
# (a stage only starts once the previous one wrote its last checkpoint). Run it again to go on.
#   stage 1: lab/levers/distill-4level.yaml to step 3700        -> runs/ncvsd-4level
#   stage 2: cpu-small-finetune (low lr) to step 4200           -> runs/ncvsd-4level-ft
#   stage 3: cpu-small-mean4 (the posterior-mean term) to 5205  -> runs/ncvsd-4level-mean4
# Read results/ncvsd_4level/README.md first: stage 1 as committed (step 1200) drifts towards noisy
# samples at sigma 0.5 after step 1200; change its recipe before running the chain to the end.
set -euo pipefail
common=(--teacher runs/teacher-4level --data ../shared/data/cbsd432
        --exclude benchmarks/splits/cbsd432_train_exclude.txt
        --val-data ../shared/data/cbsd432 --val-list benchmarks/splits/cbsd432_val32.txt --precision auto)

# stage OUT PRESET STEPS INIT: resume OUT if it has a checkpoint, else start it from INIT;
# succeed only when OUT holds the checkpoint of step STEPS.
stage() {
  local out=$1 preset=$2 steps=$3 init=$4 final
  final=$(printf '%s/checkpoint-%07d.safetensors' "$out" "$steps")
  [ -e "$final" ] && return 0
  if [ -e "$out/latest.safetensors" ]; then
    ncvsd-distill "${common[@]}" --preset "$preset" --out "$out" --resume --steps "$steps"
  else
    ncvsd-distill "${common[@]}" --preset "$preset" --out "$out" --init-from "$init" --steps "$steps"
  fi
  [ -e "$final" ] || { echo "stopped before step $steps of $out"; return 1; }
}

stage runs/ncvsd-4level lab/levers/distill-4level.yaml 3700 ""
stage runs/ncvsd-4level-ft cpu-small-finetune 4200 runs/ncvsd-4level/checkpoint-0003700.safetensors
stage runs/ncvsd-4level-mean4 cpu-small-mean4 5205 runs/ncvsd-4level-ft/checkpoint-0004200.safetensors
echo "all three stages done: runs/ncvsd-4level-mean4/checkpoint-0005205.safetensors"
