"""Issue 18 probe: page faults and seconds per step inside an sr4x solve (warm), per size."""
import json
import resource
import sys
import time

import torch

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.tasks import load_task

retain_freed_memory()
model, task = load_model(), load_task("sr4x")
for size in (int(s) for s in sys.argv[1].split(",")):
    clean = torch.rand(1, 3, size, size) * 2 - 1
    y = task.build_operator(clean.shape).measure(clean, task.sigma_y, torch.Generator().manual_seed(0))
    solve(y, task, model=model, steps=2)
    marks = []

    def mark(state):
        marks.append((time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt))

    mark(None)
    result = solve(y, task, model=model, steps=int(sys.argv[2]) if len(sys.argv) > 2 else 3, callback=mark)
    steps = [{"s": b[0] - a[0], "minflt": b[1] - a[1]} for a, b in zip(marks, marks[1:])]
    print(json.dumps({"size": size, "network_s": result.network_seconds, "total_s": result.seconds,
                      "steps": steps}), flush=True)
