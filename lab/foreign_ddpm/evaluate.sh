#!/usr/bin/env bash
# Issue 41: the foreign DDPM (lab/models/foreign-ddpm, trained by train_ddpm.py) through load_prior,
# beside the shipped teacher. Usage: bash lab/foreign_ddpm/evaluate.sh [MODEL] [OUT] [GENERATOR]
#   NCVSD_DATA must hold cbsd432/ and cbsd68/ (the published sets). GENERATOR: a run folder of
#   `ncvsd-distill --teacher diffusers:MODEL --preset lab/foreign_ddpm/distill-foreign.yaml` (step 4 below,
#   skipped without it).
# 1. denoising PSNR / LPIPS at t = 0.1 / 0.2 / 0.5 on the 32 validation crops (both priors);
# 2. the README's sr4x example with --prior teacher --teacher diffusers:MODEL (and the shipped teacher);
# 3. ncvsd-bench cbsd68-quick on its first 2 images, sr4x, with MODEL as every teacher method's prior;
# 4. with GENERATOR: its diagnostic on the validation crops, and NCVSD, DPS-1000 and DAPS-1000 added to 3.
set -euo pipefail
model=${1:-lab/models/foreign-ddpm}
out=${2:-lab/results/foreign_ddpm}
generator=${3:-}
data=${NCVSD_DATA:?set NCVSD_DATA to the folder that holds cbsd432/ and cbsd68/}
mkdir -p "$out"
for which in shipped foreign; do
  teacher=$([ $which = shipped ] && echo "" || echo "--teacher diffusers:$model")
  python benchmarks/denoising_quality.py --data "$data/cbsd432" --list benchmarks/splits/cbsd432_val32.txt \
      --crop 128 --levels 0.1 0.2 0.5 $teacher --json "$out/denoising_$which.json" | tee "$out/denoising_$which.txt"
done
example=ncvsd_inverse/data/examples/tiger.png
ncvsd-solve --task sr4x "$example" --simulate --prior teacher --teacher "diffusers:$model" --precision float32 \
    -o "$out/tiger_sr4x_foreign.png" --report "$out/tiger_sr4x_foreign.json"
ncvsd-solve --task sr4x "$example" --simulate --prior teacher --precision float32 \
    -o "$out/tiger_sr4x_shipped_teacher.png" --report "$out/tiger_sr4x_shipped_teacher.json"
ncvsd-bench cbsd68-quick --first 2 --tasks sr4x --methods pnp_teacher,diffpir,ddrm,classical \
    --teacher "diffusers:$model" --out "$out/quick2-sr4x" --resume --quiet
if [ -n "$generator" ]; then
  python benchmarks/denoising_quality.py --data "$data/cbsd432" --list benchmarks/splits/cbsd432_val32.txt \
      --crop 128 --levels 0.1 0.2 0.5 --teacher "diffusers:$model" --generator "$generator" \
      --json "$out/generator_diagnostic.json" | tee "$out/generator_diagnostic.txt"
  ncvsd-bench cbsd68-quick --first 2 --tasks sr4x --methods ncvsd,pnp_teacher,dps,daps,diffpir,ddrm,classical \
      --teacher "diffusers:$model" --generator "$generator" --out "$out/quick2-sr4x" --resume --quiet
fi
