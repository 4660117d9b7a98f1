# Sourced by distill_4level_chain.sh, reship_4level.sh and reship_keep.sh: the shipped 4-level
# generator's four distillation stages, in order, each "RUN-FOLDER PACKAGED-PRESET END-STEP".
# Each stage starts from the previous one's checkpoint at its end step.
STAGES=("ncvsd-4level-s1 cpu-4level 1200"
        "ncvsd-4level-mean4 cpu-4level-mean4 1400"
        "ncvsd-4level-mean4-fakelr cpu-4level-fakelr 1600"
        "ncvsd-4level-mean16 cpu-4level-mean16 2200")

# final_checkpoint FOLDER STEP: a run folder's checkpoint of STEP, e.g. runs/ncvsd-4level-s1/checkpoint-0001200.safetensors
final_checkpoint() { printf '%s/checkpoint-%07d.safetensors' "$1" "$2"; }

# newest_stage RUNS: the index in STAGES of the last stage with a checkpoint under RUNS (0 if none).
# The stages before it are done: reship_keep.sh keeps only its checkpoint, to stay within what a
# session may commit, and distill_4level_chain.sh goes on from it.
newest_stage() {
  local i name newest=0
  for i in "${!STAGES[@]}"; do
    read -r name _ <<<"${STAGES[$i]}"
    compgen -G "$1/$name/*.safetensors" >/dev/null && newest=$i
  done
  echo "$newest"
}
