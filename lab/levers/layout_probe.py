"""Issue 17 lever probe: the memory layout of the teacher's training step on this CPU.

Inference feeds the network ``channels_last`` (``sampling.py``: the convolutions' fastest layout
on oneDNN); training feeds it contiguous NCHW patches. This times the same step as
``ncvsd-train`` (``TeacherLoss``, Adam, bfloat16 autocast where native) with the patches in each
layout, and with the network's weights also in ``channels_last``. Prints one JSON line. Pause a
background training first (``source lab/pause_training.sh``).

    python lab/levers/layout_probe.py --preset lab/levers/teacher-4level-p64.yaml
"""
from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lab/levers/teacher-4level-p64.yaml")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    import torch

    from ncvsd_inverse.networks import build_teacher
    from ncvsd_inverse.sampling import native_bfloat16
    from ncvsd_inverse.training import load_preset
    from ncvsd_inverse.training.losses import TeacherLoss

    cfg, _ = load_preset(args.preset)
    autocast = native_bfloat16("cpu")
    loss_fn = TeacherLoss(cfg.p_mean, cfg.p_std)
    x = torch.rand(cfg.batch, cfg.network.img_channels, cfg.patch, cfg.patch) * 2 - 1

    def seconds_per_step(layout: torch.memory_format, weights_too: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        net = build_teacher(cfg.network).train()
        if weights_too:
            net = net.to(memory_format=layout)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        batch = x.contiguous(memory_format=layout)
        started, loss = None, None
        for step in range(args.steps + 2):
            if step == 2:
                started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(net, batch, torch.Generator().manual_seed(step)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - started) / args.steps, float(loss)

    rows = {}
    for name, layout, weights_too in (("nchw", torch.contiguous_format, False),
                                      ("channels_last_input", torch.channels_last, False),
                                      ("channels_last_all", torch.channels_last, True)):
        rows[name] = dict(zip(("s_per_step", "loss"), seconds_per_step(layout, weights_too)))
    print(json.dumps({"preset": args.preset, "batch": cfg.batch, "patch": cfg.patch, "bfloat16": autocast,
                      "threads": torch.get_num_threads(), **rows}))


if __name__ == "__main__":
    main()
