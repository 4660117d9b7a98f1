#!/usr/bin/env bash
# Speed round 4 (issue 18): yesterday's settings (50 steps, float32) against today's (the preset's
# steps, precision auto = bfloat16 where native) side by side, then the large sizes with today's.
# Quiet CPU: pauses a background training (SIGSTOP) while it runs. Run from the repository root.
set -euo pipefail
out=lab/results/speed_round4
train=$(pgrep -f "ncvsd-train --preset" || true)
[ -n "$train" ] && kill -STOP $train
trap '[ -n "$train" ] && kill -CONT $train' EXIT
python benchmarks/solver_speed.py --tasks sr4x --sizes 256 768x512 --steps 50 preset --precision float32 auto \
  --json $out/sr4x_small.json > $out/sr4x_small.log 2>&1
python benchmarks/solver_speed.py --tasks sr4x --sizes 1024 2048 --steps preset --precision auto \
  --json $out/sr4x_large.json > $out/sr4x_large.log 2>&1
python benchmarks/solver_speed.py --tasks box_inpainting random_inpainting gaussian_deblur motion_deblur \
  --sizes 256 768x512 --precision auto --json $out/tasks.json > $out/tasks.log 2>&1
OMP_NUM_THREADS=1 python benchmarks/solver_speed.py --tasks sr4x --sizes 256 --steps preset --precision auto \
  --json $out/sr4x_1thread.json > $out/sr4x_1thread.log 2>&1
# a 12-megapixel output the way a user makes one: ncvsd-solve on a 1000x750 measurement, tile auto
tmp=$(mktemp -d)
python -c "
import sys; sys.path.insert(0, 'benchmarks')
from solver_speed import clean_of_size
from ncvsd_inverse.io import read_image, write_image
write_image(clean_of_size(read_image('examples/tiger.png'), 3000, 4000), '$tmp/photo.png')"
ncvsd-degrade $tmp/photo.png --task sr4x --out-dir $tmp
/usr/bin/time -v ncvsd-solve --task sr4x $tmp/photo_sr4x.png -o $tmp/photo_x4.png --report $out/sr4x_4000x3000.json \
  > $out/sr4x_4000x3000.log 2>&1
python -c "from PIL import Image; print('output size', Image.open('$tmp/photo_x4.png').size)" >> $out/sr4x_4000x3000.log
rm -r $tmp
