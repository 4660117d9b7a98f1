"""Issue 18 lever probe: ``torch.compile`` (inductor) of the shipped generator on this CPU.

Measures, for one image size: the eager time per call, the first compiled call (the compile),
and the compiled time per call. Run it twice with the same ``--cache`` folder: the second
process shows what inductor's on-disk cache saves. Prints one JSON line.

    python lab/levers/compile/probe.py --size 256 --cache /tmp/inductor-cache   # cold
    python lab/levers/compile/probe.py --size 256 --cache /tmp/inductor-cache   # warm
"""
from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--cache", required=True, help="TORCHINDUCTOR_CACHE_DIR")
    args = parser.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = args.cache
    import torch

    from ncvsd_inverse import load_model
    from ncvsd_inverse.allocator import retain_freed_memory

    retain_freed_memory()
    model = load_model().eval()
    u = torch.randn(1, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
    z, sigma = torch.randn_like(u), torch.tensor([0.5])

    def per_call(fn) -> float:
        fn(u, sigma, z=z)
        start = time.perf_counter()
        for _ in range(args.calls):
            fn(u, sigma, z=z)
        return (time.perf_counter() - start) / args.calls

    with torch.no_grad():
        eager = per_call(model)
        compiled = torch.compile(model)
        start = time.perf_counter()
        compiled(u, sigma, z=z)
        first = time.perf_counter() - start
        fast = per_call(compiled)
        same = float((compiled(u, sigma, z=z) - model(u, sigma, z=z)).abs().max())
    print(json.dumps({"size": args.size, "threads": torch.get_num_threads(), "eager_s": eager,
                      "first_compiled_call_s": first, "compiled_s": fast, "speedup": eager / fast,
                      "max_abs_difference": same, "cache": args.cache}))


if __name__ == "__main__":
    main()
