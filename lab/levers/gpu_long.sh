#!/bin/bash
# Long distillation levers on a lent GPU (issue 5), as one call of the device tool:
#   1. the four lab/levers/gpu-long-*.yaml distillations (or PRESETS) from the shipped teacher, side
#      by side on the one GPU, each stopped by SIGTERM after TRAIN_S seconds (it checkpoints; --resume
#      continues); with INIT=CHECKPOINT each starts from it (--init-from; see device_init.py);
#   2. the shipped PnP presets (8 validation crops of 128x128, mean of 4 runs, bfloat16, as on the CPU)
#      on the shipped generator and on each run's candidate checkpoints (gpu_collect.py candidates),
#      all stopped after EVAL_S seconds;
#   3. gpu_collect.py collect: summary table, up to 6 exported generators and a tarball of logs/stats in $OUT;
#      a generator over 15 MiB (the 4-level one exports as 27 MB) comes back in parts (device_out.sh).
# Local dry run (CPU): OUT=/tmp/o WORK=/tmp/w TRAIN_S=60 EVAL_S=60 EXTRA="--steps 2 --device cpu" PRESETS=lab/levers/gpu-long-base.yaml bash lab/levers/gpu_long.sh
set -u
DATA=${DATA:-.devcarry/cbsd432}
WORK=${WORK:-/tmp/gpu-work}
OUT=${OUT:?set OUT}
TRAIN_S=${TRAIN_S:-310}
EVAL_S=${EVAL_S:-140}
EXTRA=${EXTRA:-}
INIT=${INIT:-}
PRESETS=${PRESETS:-lab/levers/gpu-long-*.yaml}
TEACHER=ncvsd_inverse/default_model/teacher.safetensors
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
source lab/levers/device_out.sh
mkdir -p "$WORK/pnp" "$OUT"
nvidia-smi -L 2>/dev/null; python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

for preset in $PRESETS; do
  run=$(basename "$preset" .yaml); run=${run#gpu-}
  OMP_NUM_THREADS=2 timeout -k 60 -s TERM "$TRAIN_S" python -m ncvsd_inverse.cli.train distill \
    --teacher $TEACHER --preset "$preset" --data "$DATA" --exclude benchmarks/splits/cbsd432_train_exclude.txt \
    --val-data "$DATA" --val-list benchmarks/splits/cbsd432_val32.txt --out "$WORK/$run" --quiet ${INIT:+--init-from "$INIT"} $EXTRA \
    >"$WORK/$run.log" 2>&1 &
done
wait
for log in "$WORK"/*.log; do echo "== $log"; tail -3 "$log"; done
for stats in "$WORK"/*/stats.jsonl; do echo "$stats"; tail -1 "$stats"; done

evaluate() {  # label, model argument(s): the five tasks in order, whatever finishes in EVAL_S
  local label=$1; shift
  for task in random_inpainting sr4x gaussian_deblur motion_deblur box_inpainting; do
    python benchmarks/tune_solver.py --data "$DATA" --list benchmarks/splits/cbsd432_val32.txt --first 8 --crop 128 \
      --runs 4 --precision bfloat16 --task $task "$@" --json "$WORK/pnp/${label}__${task}.json" >>"$WORK/pnp/$label.log" 2>&1
  done
}
export -f evaluate; export DATA WORK
OMP_NUM_THREADS=1 timeout -k 10 "$EVAL_S" bash -c 'evaluate shipped' &
python lab/levers/gpu_collect.py candidates "$WORK" >"$WORK/candidates.txt"
while read -r label checkpoint; do
  OMP_NUM_THREADS=1 timeout -k 10 "$EVAL_S" bash -c "evaluate $label --model $checkpoint" &
done <"$WORK/candidates.txt"
wait
python lab/levers/gpu_collect.py collect "$WORK" "$OUT"
for exported in "$OUT"/*.safetensors; do
  [ -e "$exported" ] && [ "$(stat -c %s "$exported")" -gt $((15 * 1024 * 1024)) ] && send_in_parts "$exported" "${exported%.safetensors}" && rm "$exported"
done
ls -la "$OUT"
