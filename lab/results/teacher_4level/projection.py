"""Issue 17, goal 1: when would the 4-level teacher's run reach +0.5 dB on the record?

Fits val32 PSNR = a + b ln(step) to the committed measurements from step 15329 on (this README's
tables), and takes the slope b of the last two val32 and record measurements (29521, 42592), then
asks at what step each slope adds the record's missing dB at t = 0.1 / 0.2 / 0.5 (the goal: the
issue's baseline 34.08 / 30.31 / 25.98 + 0.5). Prints a table; no network runs.

    python lab/results/teacher_4level/projection.py
"""
import math

import numpy as np

VAL32 = {15329: (33.846, 30.087, 25.780), 18000: (33.880, 30.123, 25.813), 19500: (33.894, 30.138, 25.827),
         20323: (33.902, 30.145, 25.833), 21823: (33.918, 30.161, 25.848), 23323: (33.929, 30.173, 25.860),
         29521: (33.968, 30.216, 25.900), 42592: (34.027, 30.276, 25.954)}
RECORD = {29521: (34.33, 30.59, 26.28), 42592: (34.38, 30.64, 26.34)}
GOAL = tuple(baseline + 0.5 for baseline in (34.08, 30.31, 25.98))
LAST, BEFORE = 42592, 29521

print(f"{'t':>4s} {'missing dB':>10s} | slope per ln(step): {'val32 fit':>9s} {'val32 last':>10s} "
      f"{'record last':>11s} | step the goal needs: {'val32 fit':>9s} {'val32 last':>10s} {'record last':>11s}")
for i, t in enumerate((0.1, 0.2, 0.5)):
    steps = np.array(sorted(VAL32))
    fit_slope = np.polyfit(np.log(steps), [VAL32[s][i] for s in steps], 1)[0]
    val_slope = (VAL32[LAST][i] - VAL32[BEFORE][i]) / math.log(LAST / BEFORE)
    record_slope = (RECORD[LAST][i] - RECORD[BEFORE][i]) / math.log(LAST / BEFORE)
    missing = GOAL[i] - RECORD[LAST][i]
    needed = [LAST * math.exp(missing / slope) for slope in (fit_slope, val_slope, record_slope)]
    print(f"{t:4.1f} {missing:10.2f} | {'':19s} {fit_slope:9.3f} {val_slope:10.3f} {record_slope:11.3f} | "
          f"{'':20s} {needed[0]:9,.0f} {needed[1]:10,.0f} {needed[2]:11,.0f}")
