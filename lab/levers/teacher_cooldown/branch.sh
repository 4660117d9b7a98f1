#!/usr/bin/env bash
# Issue 17, goal 1: does a linear learning-rate cooldown at the end of the 4-level teacher's run
# gain more than the same number of steps of the plain inverse-sqrt schedule?
# Branches runs/teacher-4level at checkpoint STEP into runs/teacher-4level-coolN, which decays the
# learning rate linearly to zero over N steps (`--cooldown-steps`), then measures its EMA on val32.
# The comparison is runs/teacher-4level itself at step STEP + N (measure it with
# lab/results/teacher_4level/measure.sh).
# Usage: lab/levers/teacher_cooldown/branch.sh STEP N
set -euo pipefail
step=$1
cool=$2
ncvsd-train --preset lab/levers/teacher-4level-p64.yaml --data ../shared/data/cbsd432 \
    --exclude benchmarks/splits/cbsd432_train_exclude.txt --precision auto \
    --out "runs/teacher-4level-cool$cool" \
    --init-from "runs/teacher-4level/checkpoint-$(printf %07d "$step").safetensors" \
    --steps $((step + cool)) --cooldown-steps "$cool" --keep-checkpoints 2
lab/results/teacher_4level/measure.sh "runs/teacher-4level-cool$cool" "step$((step + cool))_cool$cool"
