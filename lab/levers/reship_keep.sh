#!/usr/bin/env bash
# Issue 17: keep what a stopped lab/levers/reship_4level.sh has made, for the next session.
# Copies from OUT (default runs/reship) into KEEP (default lab/runs/reship) only what resuming
# needs, as regular files: the teacher; each distillation stage's stats.jsonl and sessions.jsonl;
# the newest stage's final checkpoint if it has one, else its latest checkpoint, slimmed
# (device_init.py slim: no Adam moments, 80 MB instead of 195, under a git host's 100 MB file
# limit; the stage restarts its moments from zero, as the shipped stage 1 once did at step 1063);
# the exported model; the JSON tables; the suites (finished cells, pictures and report). Commit
# KEEP afterwards. To go on in a fresh checkout:
#   mkdir -p runs && cp -r lab/runs/reship runs/ && nohup bash lab/levers/reship_4level.sh \
#     runs/teacher-4level-42592 runs/reship >> runs/reship.log 2>&1 &
# (the teacher argument is read only while OUT has no teacher/ yet).
# Stop the reship first (its header says how) and wait until it has exited.
set -euo pipefail
out=${1:-runs/reship}
keep=${2:-lab/runs/reship}
pgrep -f "^bash lab/levers/reship_4level" >/dev/null && { echo "reship_4level.sh is still running: stop it first" >&2; exit 1; }
mkdir -p "$keep"
copy() { mkdir -p "$keep/$(dirname "$1")" && cp -L "$out/$1" "$keep/$1"; }
[ -d "$out/teacher" ] && { copy teacher/teacher.safetensors; copy teacher/teacher.json; }
source "$(dirname "$0")/distill_4level_stages.sh"
# Only the newest stage's checkpoint is kept (distill_4level_chain.sh skips the stages before it):
# one 80 MB file per session, where all four made a submission too large to land.
newest=$(newest_stage "$out")
for i in "${!STAGES[@]}"; do
  read -r stage preset steps <<<"${STAGES[$i]}"
  [ -d "$out/$stage" ] || continue
  rm -rf "${keep:?}/$stage"
  for log in stats.jsonl sessions.jsonl; do [ -e "$out/$stage/$log" ] && copy "$stage/$log"; done
  [ "$i" -eq "$newest" ] || continue
  last=$(final_checkpoint "$out/$stage" "$steps")
  if [ -e "$last" ]; then
    python lab/levers/device_init.py slim "$last" "$keep/$stage"
    mv "$keep/$stage/latest.safetensors" "$keep/$stage/$(basename "$last")"
    mv "$keep/$stage/latest.json" "$keep/$stage/$(basename "${last%.safetensors}").json"
  elif [ -e "$out/$stage/latest.safetensors" ]; then
    python lab/levers/device_init.py slim "$out/$stage" "$keep/$stage"
  fi
done
for item in model teacher_val32.json teacher_cbsd68.json generator_diagnostic_val.json; do
  [ -e "$out/$item" ] && { rm -rf "${keep:?}/$item"; cp -rL "$out/$item" "$keep/$item"; }
done
for suite in cbsd68-report goal4-quick; do  # the cells resume a suite; its report is the record
  [ -d "$out/$suite" ] && { rm -rf "${keep:?}/$suite"; cp -rL "$out/$suite" "$keep/$suite"; }
done
du -sh "$keep"
