"""Training throughput per preset: images/s and seconds per step for teacher and distillation steps.

    python benchmarks/train_throughput.py [--presets tiny cpu-small] [--steps 10] [--json out.json]

Times real training steps (the same code as ncvsd-train / ncvsd-distill) on random patches of
synthetic images after two warm-up steps, on the chosen device. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from ncvsd_inverse import training
from ncvsd_inverse.networks import build_teacher, count_parameters


class RandomImages:
    """PatchDataset stand-in: smooth random images, so no data files are needed."""

    def __init__(self, patch: int, channels: int):
        self.patch, self.channels = patch, channels

    def batch(self, size: int, generator: torch.Generator) -> torch.Tensor:
        low = torch.rand(size, self.channels, self.patch // 4 + 1, self.patch // 4 + 1, generator=generator)
        return torch.nn.functional.interpolate(low, size=(self.patch, self.patch), mode="bilinear") * 2 - 1


def time_steps(make_run, steps: int) -> float:
    """Seconds per step over ``steps`` steps after 2 warm-up steps."""
    with tempfile.TemporaryDirectory() as out:
        make_run(Path(out), 2)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        make_run(Path(out), steps)
        return (time.perf_counter() - started) / steps


def measure(preset: str, steps: int, device: str) -> dict:
    teacher_cfg, distill_cfg = training.load_preset(preset)
    data = RandomImages(teacher_cfg.patch, teacher_cfg.network.img_channels)
    env = training.Distributed(device=torch.device(device))
    quiet_teacher = lambda n: dataclasses.replace(teacher_cfg, steps=n, checkpoint_every=10**9, log_every=10**9)  # noqa: E731

    def teacher_run(out, n):
        torch.manual_seed(0)
        training.train_teacher(build_teacher(teacher_cfg.network), data, quiet_teacher(n), out, env, quiet=True)

    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).to(device).eval().requires_grad_(False)
    distill_data = RandomImages(distill_cfg.patch, teacher_cfg.network.img_channels)

    def distill_run(out, n):
        torch.manual_seed(0)
        g, f, d = training.build_distillation_nets(teacher, distill_cfg)
        cfg = dataclasses.replace(distill_cfg, steps=n, checkpoint_every=10**9, log_every=10**9, val_every=10**9)
        training.distill(teacher, g, f, distill_data, cfg, out, disc=d, env=env, quiet=True)

    teacher_s = time_steps(teacher_run, steps)
    distill_s = time_steps(distill_run, steps)
    distill_images = distill_cfg.batch * (distill_cfg.fake_steps + 1)
    return {"preset": preset, "parameters": count_parameters(teacher),
            "teacher_batch": teacher_cfg.batch, "teacher_patch": teacher_cfg.patch,
            "teacher_s_per_step": teacher_s, "teacher_images_per_s": teacher_cfg.batch / teacher_s,
            "distill_batch": distill_cfg.batch, "distill_patch": distill_cfg.patch,
            "distill_s_per_step": distill_s, "distill_images_per_s": distill_images / distill_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "cpu-small"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    rows = [measure(p, args.steps, args.device) for p in args.presets]
    machine = {"device": args.device, "cpu": platform.processor() or platform.machine(),
               "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(f"{'preset':12s} {'params':>9s} {'teacher s/step':>15s} {'img/s':>7s} {'distill s/step':>15s} {'img/s':>7s}")
    for r in rows:
        print(f"{r['preset']:12s} {r['parameters']:9,d} {r['teacher_s_per_step']:15.3f} "
              f"{r['teacher_images_per_s']:7.1f} "
              f"{r['distill_s_per_step']:15.3f} {r['distill_images_per_s']:7.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
