# Sourced by the lab's timing and tuning scripts: pause a background ncvsd-train (SIGSTOP) while
# the script runs, so its numbers come from a quiet CPU, and resume it (SIGCONT) on exit.
train=$(pgrep -f "ncvsd-train --preset" || true)
[ -n "$train" ] && kill -STOP $train
trap '[ -n "$train" ] && kill -CONT $train' EXIT
