# Sourced by the lab's timing and tuning scripts: pause a background ncvsd-train or ncvsd-distill
# (SIGSTOP) while the script runs, so its numbers come from a quiet CPU, and resume it (SIGCONT)
# on exit. The pattern needs the entry point's path, so a shell whose command line merely
# mentions the tools is left alone.
train=$(pgrep -f "bin/ncvsd-(train|distill) " || true)
[ -n "$train" ] && kill -STOP $train
trap '[ -n "$train" ] && kill -CONT $train' EXIT
