"""Issue 17 lever probe: ``torch.compile`` (inductor) of the teacher's training step on this CPU.

The teacher's run is compute-bound on 2 cores (0.6-1.0 s per step of 16 64x64 patches). Its
UNet is EDM2's: forced weight normalisation, per-pixel normalisation and magnitude-preserving
sums are many passes over memory that inductor could fuse. This times the same step as
``ncvsd-train`` (``TeacherLoss``, Adam, bfloat16 autocast when the CPU has it) eager, then with
the network compiled: the first compiled step (the compile) and the compiled steps after it.
Prints one JSON line. Pause a background training first (``source lab/pause_training.sh``).

    python lab/levers/compile/train_probe.py --preset lab/levers/teacher-4level-p64.yaml
"""
from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lab/levers/teacher-4level-p64.yaml")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--mode", default=None, help="torch.compile mode (default, max-autotune-no-cudagraphs)")
    args = parser.parse_args()
    import torch

    from ncvsd_inverse.networks import build_teacher
    from ncvsd_inverse.sampling import native_bfloat16
    from ncvsd_inverse.training import load_preset
    from ncvsd_inverse.training.losses import TeacherLoss

    cfg, _ = load_preset(args.preset)
    autocast = native_bfloat16("cpu")
    torch.manual_seed(0)
    teacher = build_teacher(cfg.network).train()
    loss_fn = TeacherLoss(cfg.p_mean, cfg.p_std)
    x = torch.rand(cfg.batch, cfg.network.img_channels, cfg.patch, cfg.patch) * 2 - 1

    def seconds_per_step(net, steps: int) -> tuple[float, float]:
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        started, loss = time.perf_counter(), None
        for step in range(steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(net, x, torch.Generator().manual_seed(step)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - started) / steps, float(loss)

    seconds_per_step(teacher, 2)
    eager, eager_loss = seconds_per_step(teacher, args.steps)
    compiled = torch.compile(teacher, mode=args.mode)
    first, _ = seconds_per_step(compiled, 1)
    seconds_per_step(compiled, 1)
    fast, compiled_loss = seconds_per_step(compiled, args.steps)
    print(json.dumps({"preset": args.preset, "batch": cfg.batch, "patch": cfg.patch, "bfloat16": autocast,
                      "threads": torch.get_num_threads(), "mode": args.mode, "eager_s_per_step": eager,
                      "first_compiled_step_s": first, "compiled_s_per_step": fast,
                      "speedup": eager / fast, "eager_loss": eager_loss, "compiled_loss": compiled_loss}))


if __name__ == "__main__":
    main()
