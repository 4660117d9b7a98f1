#!/usr/bin/env bash
# Tuning round 13 (issue 42), part e: motion deblurring's new preset (from noise at sigma 10) on
# cbsd68-quick: the cells of NCVSD and the teacher chain (50 / 20 / 10 NFE), 8 images, 4 runs.
# One thread; the CBSD68 report's rerun on the other core.
set -euo pipefail
export OMP_NUM_THREADS=1 NCVSD_DATA=/work/shared/data
ncvsd-bench cbsd68-quick --out benchmarks/results/cbsd68-quick --resume --tasks motion_deblur \
    --methods ncvsd,pnp_teacher --quiet > lab/results/tune_round13/quick_motion.log 2>&1
