"""Issue 17 lever probe: cost of candidate teacher architectures on this CPU.

For each candidate UNet: parameters, seconds per teacher training step (batch x patch as given,
float32, the real TeacherLoss + Adam), and seconds per 256x256 evaluation (no grad), all in one
run so the ratios to today's ``cpu-small`` network are comparable. Writes JSON next to itself.

    python lab/levers/teacher_arch/probe.py --out lab/results/teacher_arch/probe.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ncvsd_inverse.networks import UNetConfig, build_teacher, count_parameters
from ncvsd_inverse.training import TeacherLoss

CANDIDATES = {
    "cpu-small (today)": dict(model_channels=32, channel_mult=[1, 2, 2], num_blocks=2),
    "4 levels 1-2-2-4": dict(model_channels=32, channel_mult=[1, 2, 2, 4], num_blocks=2),
    "4 levels 1-2-3-4": dict(model_channels=32, channel_mult=[1, 2, 3, 4], num_blocks=2),
    "4 levels 1-2-3-4, attn at 3": dict(model_channels=32, channel_mult=[1, 2, 3, 4], num_blocks=2, attn_levels=[3]),
    "4 levels 1-2-3-4, 3 blocks": dict(model_channels=32, channel_mult=[1, 2, 3, 4], num_blocks=3),
    "48 ch 1-2-2": dict(model_channels=48, channel_mult=[1, 2, 2], num_blocks=2),
    "48 ch 1-2-2-4": dict(model_channels=48, channel_mult=[1, 2, 2, 4], num_blocks=2),
    "64 ch 1-2-2": dict(model_channels=64, channel_mult=[1, 2, 2], num_blocks=2),
}


def seconds(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--patches", default="32x32,16x64", help="batch x patch pairs to time")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    loss_fn, rows = TeacherLoss(), []
    for name, spec in CANDIDATES.items():
        torch.manual_seed(0)
        net = build_teacher(UNetConfig(img_channels=3, **spec))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        row = {"name": name, "network": spec, "parameters": count_parameters(net)}
        for pair in args.patches.split(","):
            batch, patch = map(int, pair.split("x"))
            x = torch.rand(batch, 3, patch, patch) * 2 - 1
            gen = torch.Generator().manual_seed(0)

            def train_step():
                opt.zero_grad()
                loss_fn(net, x, gen).mean().backward()
                opt.step()

            row[f"train_s_per_step_{pair}"] = seconds(train_step, args.repeats)
        x = torch.rand(1, 3, 256, 256) * 2 - 1
        with torch.no_grad():
            row["eval_s_256"] = seconds(lambda: net(x, 0.2), args.repeats)
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]
    for row in rows:
        row["eval_cost_vs_today"] = row["eval_s_256"] / base["eval_s_256"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch_threads": torch.get_num_threads(), "rows": rows}, indent=1) + "\n")
    for row in rows:
        print(f"{row['name']:32s} {row['parameters']:>9d}  eval256 {row['eval_s_256']:.3f}s "
              f"({row['eval_cost_vs_today']:.2f}x)  " +
              "  ".join(f"{k[17:]} {v:.2f}s" for k, v in row.items() if k.startswith("train_s")))


if __name__ == "__main__":
    main()
