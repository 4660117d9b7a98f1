"""Issue 18 probe: is the 2048^2 excess a power-of-two (cache-aliasing) effect of the network?

Times warm generator calls (bf16 autocast, channels_last, as the solver runs them) at sizes
around 1024 and 2048, reports s/MP per call. Run on a quiet CPU (pause any training)."""
import json
import sys
import time

import torch

from ncvsd_inverse import load_model
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.sampling import GenerativePrior

retain_freed_memory()
torch.manual_seed(0)
model = load_model()
prior = GenerativePrior(model, channels=3, precision=sys.argv[1] if len(sys.argv) > 1 else "auto")
sizes = [int(s) for s in (sys.argv[2].split(",") if len(sys.argv) > 2 else "1024,1032,2048,2056,1984".split(","))]
rows = []
for size in sizes:
    u = torch.randn(1, 3, size, size) * 0.5
    sigma = torch.full((1,), 0.5)
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        prior(u, sigma, rng)  # warm-up
        times = []
        for _ in range(2):
            start = time.perf_counter()
            prior(u, sigma, rng)
            times.append(time.perf_counter() - start)
    best = min(times)
    rows.append({"size": size, "s_per_call": best, "s_per_mp": best / (size * size / 1e6)})
    print(json.dumps(rows[-1]), flush=True)
