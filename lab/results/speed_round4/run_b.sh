#!/usr/bin/env bash
# Speed round 4b (issue 18): after the row-space SR likelihood step and the bfloat16-aware memory
# estimate (which lets 2048x2048 run untiled in bf16), sr4x at 1024 and 2048 again, then a
# 12-megapixel output made the way a user makes one: ncvsd-solve on a 1000x750 measurement.
set -euo pipefail
out=lab/results/speed_round4
source lab/pause_training.sh
python benchmarks/solver_speed.py --tasks sr4x --sizes 256 1024 2048 --steps preset --precision auto \
  --json $out/sr4x_large_b.json > $out/sr4x_large_b.log 2>&1
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
