"""Issue 18 probe: which operators make a generator call cost more per pixel at 2048^2 than at
1024^2? torch.profiler self-CPU time per operator type, one warm call per size, bf16 autocast."""
import json
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from ncvsd_inverse import load_model
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.sampling import GenerativePrior

retain_freed_memory()
model = load_model()
prior = GenerativePrior(model, channels=3, precision="auto", tile=None)
table = {}
sizes = [int(s) for s in sys.argv[1].split(",")]
for size in sizes:
    u = torch.rand(1, 3, size, size) * 2 - 1
    sigma, rng = torch.full((1,), 0.5), torch.Generator().manual_seed(0)
    with torch.no_grad():
        prior(u, sigma, rng)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            prior(u, sigma, rng)
    mp = size * size / 1e6
    for event in prof.key_averages():
        table.setdefault(event.key, {})[size] = event.self_cpu_time_total / 1e6 / mp
total = {size: sum(row.get(size, 0.0) for row in table.values()) for size in sizes}
print("total s/MP", json.dumps(total))
for key, row in sorted(table.items(), key=lambda kv: -kv[1].get(sizes[-1], 0.0))[:15]:
    print(f"{key:40s} " + "  ".join(f"{row.get(s, 0.0):7.3f}" for s in sizes))
