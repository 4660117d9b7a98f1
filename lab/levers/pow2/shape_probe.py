"""Issue 18 probe: does the network's time per pixel depend on the image's width (rows that no
longer fit the L2 cache) rather than its area? Warm generator calls, bf16 autocast where native."""
import json
import sys
import time

import torch

from ncvsd_inverse import load_model
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.sampling import GenerativePrior

retain_freed_memory()
model = load_model()
prior = GenerativePrior(model, channels=3, precision="auto", tile=None)
for shape in sys.argv[1].split(","):
    width, height = (int(v) for v in shape.split("x"))
    u = torch.randn(1, 3, height, width) * 0.5
    sigma, rng = torch.full((1,), 0.5), torch.Generator().manual_seed(0)
    with torch.no_grad():
        prior(u, sigma, rng)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            prior(u, sigma, rng)
            times.append(time.perf_counter() - start)
    print(json.dumps({"width": width, "height": height, "s_per_call": min(times),
                      "s_per_mp": min(times) / (width * height / 1e6)}), flush=True)
