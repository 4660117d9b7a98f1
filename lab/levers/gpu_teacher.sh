#!/bin/bash
# Issue 17, goal 1 (teacher +0.5 dB), as one call of the device tool on a lent GPU:
#   1. the shipped 4-level teacher goes on training under each of PRESETS (side by side on the one
#      GPU: the UNet is small), each stopped by SIGTERM after TRAIN_S seconds (it checkpoints);
#   2. each run's EMA and the shipped teacher: denoising PSNR / LPIPS at t = 0.05, 0.1, 0.2, 0.5 on
#      the 32 validation crops (benchmarks/denoising_quality.py, the model card's table);
#   3. into $OUT: each run's exported teacher in parts under the device tool's 16 MiB per file, and
#      logs.tgz (logs, stats.jsonl, the measurements, the exported teachers' .json).
# Before the call, here (the tracked tree is far over the 64 MiB that travels):
#   mkdir -p .devcarry && cp -r ../shared/data/cbsd432 .devcarry/ && echo /.devcarry/ >> .git/info/exclude
#   python lab/levers/device_tree.py slim --min-kb 16 --keep ncvsd_inverse/default_model/teacher.safetensors
#   device run: command 'bash lab/levers/gpu_teacher.sh', carry [".devcarry"], timeout_s 600
#   python lab/levers/device_tree.py restore
# After: cat FILES/teacher-RUN.safetensors.part-* > lab/results/.../teacher.safetensors (its .json is
# in logs.tgz); the step a run reached and its numbers are in logs.tgz.
# Local dry run (CPU, two steps): OUT=/tmp/o WORK=/tmp/gt LIMIT=2 DATA=../shared/data/cbsd432 \
#   PRESETS=a-small-batch.yaml EXTRA="--steps 12002 --device cpu" bash lab/levers/gpu_teacher.sh
set -u
DATA=${DATA:-.devcarry/cbsd432}
WORK=${WORK:-/tmp/gpu-teacher}
OUT=${OUT:?set OUT}
TRAIN_S=${TRAIN_S:-420}
LIMIT=${LIMIT:-}
EXTRA=${EXTRA:-}
PRESETS=${PRESETS:-lab/levers/gpu-teacher-4level.yaml lab/levers/gpu-teacher-4level-p128.yaml}
SHIPPED=ncvsd_inverse/default_model/teacher.safetensors
VAL_LIST=benchmarks/splits/cbsd432_val32.txt
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$WORK" "$OUT"
nvidia-smi -L 2>/dev/null; python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python lab/levers/device_init.py teacher "$SHIPPED" "$WORK/init.safetensors" || exit 1

runs=()
for preset in $PRESETS; do
  run=$(basename "$preset" .yaml); run=${run#gpu-}; runs+=("$run")
  timeout -k 60 -s TERM "$TRAIN_S" python -m ncvsd_inverse.cli.train teacher --preset "$preset" --data "$DATA" \
    --exclude benchmarks/splits/cbsd432_train_exclude.txt --out "$WORK/$run" --init-from "$WORK/init.safetensors" \
    --precision auto --quiet $EXTRA >"$WORK/$run.log" 2>&1 &
done
wait

measure() {  # label, teacher file
  python benchmarks/denoising_quality.py --teacher "$2" --data "$DATA" --list "$VAL_LIST" ${LIMIT:+--limit "$LIMIT"} \
    --json "$WORK/quality-$1.json" >"$WORK/quality-$1.txt" 2>&1
  echo "== $1"; cat "$WORK/quality-$1.txt"
}
measure shipped "$SHIPPED"
for run in "${runs[@]}"; do
  echo "== $run: $(tail -1 "$WORK/$run.log")"
  python -m ncvsd_inverse.cli.export --teacher "$WORK/$run" --out "$WORK/$run/export" >>"$WORK/$run.log" 2>&1 || continue
  measure "$run" "$WORK/$run/export/teacher.safetensors"
  split -b 15m -d "$WORK/$run/export/teacher.safetensors" "$OUT/teacher-$run.safetensors.part-"
  cp "$WORK/$run/export/teacher.json" "$WORK/teacher-$run.json"
done
(cd "$WORK" && tar czf "$OUT/logs.tgz" ./*.log ./*.txt ./*.json ./*/stats.jsonl 2>/dev/null)
ls -la "$OUT"
