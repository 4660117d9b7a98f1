"""Issue 18 probe: the same 2048^2 generator call timed alone, inside an sr4x solve, and alone again."""
import sys
import time

import torch

from ncvsd_inverse import load_model, solve
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.sampling import GenerativePrior
from ncvsd_inverse.tasks import load_task

retain_freed_memory()
size = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
model, task = load_model(), load_task("sr4x")
clean = torch.rand(1, 3, size, size) * 2 - 1
y = task.build_operator(clean.shape).measure(clean, task.sigma_y, torch.Generator().manual_seed(0))
prior = GenerativePrior(model, channels=3, precision="auto", tile=None)


def alone(label):
    with torch.no_grad():
        for _ in range(2):
            start = time.perf_counter()
            prior(clean, torch.full((1,), 0.5), torch.Generator().manual_seed(0))
            print(label, "alone", round(time.perf_counter() - start, 2), flush=True)


alone("before")
marks = [time.perf_counter()]
result = solve(y, task, model=model, steps=3, callback=lambda state: marks.append(time.perf_counter()))
print("solve steps", [round(b - a, 2) for a, b in zip(marks, marks[1:])], "network", round(result.network_seconds, 2))
alone("after")
