#!/bin/bash
# Issue 17, goal 1 (teacher +0.5 dB), as one call of the device tool on a lent GPU:
#   1. the shipped 4-level teacher (or START, a teacher model file, at its step) goes on training
#      under each of PRESETS (side by side on the one GPU: the UNet is small), each stopped by
#      SIGTERM after TRAIN_S seconds (it checkpoints);
#   2. each run's EMA and the shipped teacher: denoising PSNR / LPIPS at t = 0.05, 0.1, 0.2, 0.5 on
#      the 32 validation crops (benchmarks/denoising_quality.py, the model card's table);
#   3. with DISTILL_S > 0 (seconds): the shipped distillation recipe (distill_4level_chain.sh, its
#      four stages) from the run measured best at t = 0.2, stopped after DISTILL_S; the generator of
#      the furthest stage is exported and measured against that teacher (fidelity targets, val32);
#   4. into $OUT (lab/levers/device_out.sh): each run's exported teacher (and the generator) in parts
#      under the device tool's 16 MiB per file with their sha256, and logs.tgz (logs, stats.jsonl,
#      the measurements, the exported models' .json).
# Sizing one 600 s call: TRAIN_S 420 alone; with the distillation, e.g. TRAIN_S 240 DISTILL_S 200
# (the chain's 2200 steps took 1.7-4 s each on the 2-core CPU; never timed on a GPU).
# Before the call, here (the tracked tree is far over the 64 MiB that travels):
#   mkdir -p .devcarry && cp -r ../shared/data/cbsd432 .devcarry/ && echo /.devcarry/ >> .git/info/exclude
#   to start from the CPU run's newest EMA rather than the shipped step 12000 (it is ahead: see
#   lab/results/teacher_4level/README.md): ncvsd-export --teacher lab/runs/teacher-4level --out
#   .devcarry/start, and START=.devcarry/start/teacher.safetensors before the command
#   python lab/levers/device_tree.py slim --min-kb 16 --keep ncvsd_inverse/default_model/teacher.safetensors
#   device run: command 'bash lab/levers/gpu_teacher.sh', carry [".devcarry"], timeout_s 600
#   python lab/levers/device_tree.py restore
# After: cat FILES/teacher-RUN.safetensors.part-* > lab/results/.../teacher.safetensors, compare its
# sha256 with FILES/teacher-RUN.sha256 (its .json is in logs.tgz); the same for generator-*; the
# step each run reached and its numbers are in logs.tgz.
# EXTRA="--compile" trains compiled (1.54x per teacher step on the 2-core CPU; never tried on a GPU,
# where the compile, minutes on the CPU, comes out of TRAIN_S: first try it in a short call).
# Local dry run (CPU, two teacher steps, 90 s of distillation): OUT=/tmp/o WORK=/tmp/gt LIMIT=2 \
#   DATA=../shared/data/cbsd432 PRESETS=a-small-batch.yaml EXTRA="--steps 12002 --device cpu" \
#   DISTILL_S=90 DISTILL_EXTRA="--device cpu" bash lab/levers/gpu_teacher.sh
set -u
DATA=${DATA:-.devcarry/cbsd432}
WORK=${WORK:-/tmp/gpu-teacher}
OUT=${OUT:?set OUT}
TRAIN_S=${TRAIN_S:-420}
LIMIT=${LIMIT:-}
EXTRA=${EXTRA:-}
DISTILL_S=${DISTILL_S:-0}
DISTILL_EXTRA=${DISTILL_EXTRA:-}
PRESETS=${PRESETS:-lab/levers/gpu-teacher-4level.yaml lab/levers/gpu-teacher-4level-p128.yaml}
SHIPPED=ncvsd_inverse/default_model/teacher.safetensors
START=${START:-$SHIPPED}
VAL_LIST=benchmarks/splits/cbsd432_val32.txt
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
source lab/levers/device_out.sh
mkdir -p "$WORK" "$OUT"
nvidia-smi -L 2>/dev/null; python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python lab/levers/device_init.py teacher "$START" "$WORK/init.safetensors" || exit 1

runs=()
for preset in $PRESETS; do
  run=$(basename "$preset" .yaml); run=${run#gpu-}; runs+=("$run")
  timeout -k 60 -s TERM "$TRAIN_S" python -m ncvsd_inverse.cli.train teacher --preset "$preset" --data "$DATA" \
    --exclude benchmarks/splits/cbsd432_train_exclude.txt --out "$WORK/$run" --init-from "$WORK/init.safetensors" \
    --precision auto --quiet $EXTRA >"$WORK/$run.log" 2>&1 &
done
wait

measure() {  # label, teacher file, [--generator FILE]
  local label=$1 teacher=$2; shift 2
  python benchmarks/denoising_quality.py --teacher "$teacher" "$@" --data "$DATA" --list "$VAL_LIST" \
    ${LIMIT:+--limit "$LIMIT"} --json "$WORK/quality-$label.json" >"$WORK/quality-$label.txt" 2>&1
  echo "== $label"; cat "$WORK/quality-$label.txt"
}
measure shipped "$SHIPPED"
for run in "${runs[@]}"; do
  echo "== $run: $(tail -1 "$WORK/$run.log")"
  python -m ncvsd_inverse.cli.export --teacher "$WORK/$run" --out "$WORK/$run/export" >>"$WORK/$run.log" 2>&1 || continue
  measure "$run" "$WORK/$run/export/teacher.safetensors"
  send_in_parts "$WORK/$run/export/teacher.safetensors" "$OUT/teacher-$run"
  cp "$WORK/$run/export/teacher.json" "$WORK/teacher-$run.json"
done

if [ "$DISTILL_S" -gt 0 ]; then
  best=$(python -c '
import json, sys
psnr = {}
for run in sys.argv[2:]:
    try:
        rows = json.load(open(f"{sys.argv[1]}/quality-{run}.json"))["rows"]
    except OSError:
        continue
    psnr[run] = next(r["mmse_psnr"] for r in rows if abs(r["sigma"] - 0.2) < 1e-6)
print(max(psnr, key=psnr.get) if psnr else "")' "$WORK" "${runs[@]}")
  if [ -n "$best" ]; then
    echo "== distillation from $best for $DISTILL_S s"
    TEACHER="$WORK/$best" DATA="$DATA" RUNS="$WORK/distill" DISTILL="python -m ncvsd_inverse.cli.train distill" \
      EXTRA="--quiet $DISTILL_EXTRA" timeout -k 60 -s TERM "$DISTILL_S" bash lab/levers/distill_4level_chain.sh \
      >"$WORK/distill.log" 2>&1
    tail -c 400 "$WORK/distill.log"; echo
    stage=
    for name in s1 mean4 mean4-fakelr mean16; do  # the chain's order: the furthest one begun
      [ -e "$WORK/distill/ncvsd-4level-$name/latest.safetensors" ] && stage=$WORK/distill/ncvsd-4level-$name
    done
    if [ -n "$stage" ] && python -m ncvsd_inverse.cli.export --generator "$stage" --out "$WORK/distill/export" \
        >>"$WORK/distill.log" 2>&1; then
      label=generator-$(basename "$stage")-from-$best
      measure "$label" "$WORK/$best/export/teacher.safetensors" --generator "$WORK/distill/export/generator.safetensors"
      send_in_parts "$WORK/distill/export/generator.safetensors" "$OUT/$label"
      cp "$WORK/distill/export/generator.json" "$WORK/$label.json"
    fi
  fi
fi
(cd "$WORK" && tar czf "$OUT/logs.tgz" ./*.log ./*.txt ./*.json ./*/stats.jsonl ./distill/*/stats.jsonl 2>/dev/null)
ls -la "$OUT"
