"""Issue 18 lever: the fused residual block against the plain one, alternating warm generator
calls in one process (bf16 autocast where native), so machine noise hits both alike.

    python lab/levers/fused_block/ab.py 256,1024,2048 [repeats]
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

from ncvsd_inverse import load_model, networks
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.sampling import GenerativePrior


def plain_forward(self, x, emb):
    """Block.forward as it was before the fusion (two passes per mp_silu, lerp + divide)."""
    if self.resample == "down":
        x = F.avg_pool2d(x, 2)
    elif self.resample == "up":
        x = F.interpolate(x, scale_factor=2, mode="nearest")
    if self.flavor == "enc":
        if self.conv_skip is not None:
            x = self.conv_skip(x)
        x = networks.normalize(x, dim=1)
    y = self.conv_res0(networks.mp_silu(x))
    scale = self.emb_linear(emb, gain=self.emb_gain) + 1
    y = self.conv_res1(networks.mp_silu(y * scale[:, :, None, None].to(y.dtype)))
    if self.flavor == "dec" and self.conv_skip is not None:
        x = self.conv_skip(x)
    x = networks.mp_sum(x, y, t=self.res_balance)
    return x.clip(-self.clip_act, self.clip_act)


retain_freed_memory()
fused_forward = networks.Block.forward
prior = GenerativePrior(load_model(), channels=3, precision="auto", tile=None)
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
for size in (int(s) for s in sys.argv[1].split(",")):
    u, sigma = torch.rand(1, 3, size, size) * 2 - 1, torch.full((1,), 0.5)
    times = {"plain": [], "fused": []}
    with torch.no_grad():
        for repeat in range(repeats + 1):
            for name, forward in (("plain", plain_forward), ("fused", fused_forward)):
                networks.Block.forward = forward
                start = time.perf_counter()
                prior(u, sigma, torch.Generator().manual_seed(0))
                if repeat:  # the first round warms up
                    times[name].append(time.perf_counter() - start)
    row = {"size": size, **{f"{k}_s_per_mp": min(v) / (size * size / 1e6) for k, v in times.items()},
           "speedup": min(times["plain"]) / min(times["fused"])}
    print(json.dumps(row), flush=True)
