#!/usr/bin/env bash
# Issue 18: is the growth of the time per pixel from 1024^2 to 2048^2 (bf16, untiled) TLB misses
# on 4 KiB pages? The kernel gives transparent huge pages only on request (madvise); torch's CPU
# allocator requests them with THP_MEM_ALLOC_ENABLE=1, glibc's malloc with its hugetlb tunable.
# 3 steps per solve after solver_speed's 2-step warm-up; quiet CPU (pauses a background training).
set -euo pipefail
out=lab/results/speed_round4/hugepages
mkdir -p $out
source lab/pause_training.sh
run() {  # name, env...
  local name=$1; shift
  env "$@" python benchmarks/solver_speed.py --tasks sr4x --sizes 256 1024 2048 --steps 3 --precision auto \
    --json $out/$name.json > $out/$name.log 2>&1
}
run baseline NCVSD_PROBE=1
run torch_thp THP_MEM_ALLOC_ENABLE=1
run glibc_hugetlb GLIBC_TUNABLES=glibc.malloc.hugetlb=1
