#!/usr/bin/env bash
# Issue 17, goal 1: does another recipe teach the 4-level teacher more per step, late in its run?
# The run and a branch go on from the run's latest checkpoint STEP for the same N steps, one after
# the other (never side by side on a 2-core CPU):
#   runs/teacher-4level-TAG  the branch, from checkpoint STEP under PRESET (and any further
#                            ncvsd-train options), to STEP + N;
#   runs/teacher-4level      the run itself (lab/levers/teacher-4level-p64.yaml), resumed to STEP + N.
# Then both EMAs are measured on val32 (lab/results/teacher_4level/measure.sh). TAG is the preset's
# name after "teacher-4level-" unless set in the environment.
# Usage (after `mkdir -p runs && cp -r lab/runs/teacher-4level runs/` in a fresh checkout):
#   lab/levers/teacher_branch/branch.sh PRESET N [NCVSD-TRAIN OPTION...]
#   lab/levers/teacher_branch/branch.sh lab/levers/teacher_branch/teacher-4level-p128.yaml 1500
#   TAG=cool1500 lab/levers/teacher_branch/branch.sh lab/levers/teacher-4level-p64.yaml 1500 --cooldown-steps 1500
# (the last is the learning-rate cooldown test of 2026-12-03, then run by a separate script).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 PRESET N [NCVSD-TRAIN OPTION...]" >&2; exit 2; }
preset=$1
n=$2
shift 2
tag=${TAG:-$(basename "$preset" .yaml)}; tag=${tag#teacher-4level-}
start=$(readlink -f runs/teacher-4level/latest.safetensors)
step=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['step'])" "${start%.safetensors}.json")
common=(--data ../shared/data/cbsd432 --exclude benchmarks/splits/cbsd432_train_exclude.txt
        --precision auto --steps $((step + n)) --keep-checkpoints 3)
ncvsd-train --preset "$preset" "${common[@]}" "$@" --out "runs/teacher-4level-$tag" --init-from "$start"
ncvsd-train --preset lab/levers/teacher-4level-p64.yaml "${common[@]}" --out runs/teacher-4level --resume
lab/results/teacher_4level/measure.sh "runs/teacher-4level-$tag" "step$((step + n))_$tag"
lab/results/teacher_4level/measure.sh runs/teacher-4level "step$((step + n))"
