"""Training throughput per preset: images/s and seconds per step for teacher and distillation steps.

    python benchmarks/train_throughput.py [--presets tiny cpu-small] [--steps 10] [--json out.json]
    python benchmarks/train_throughput.py --presets cpu-4level --precision auto --compile

Times real training steps (the same code as ncvsd-train / ncvsd-distill, with the preset's
recipe and ``--precision`` / ``--compile`` as on their command lines) on random patches of
synthetic images, on the chosen device: one run of 2 warm-up steps (with ``--compile``, the
compile) and ``--steps`` timed ones, read from the run's own per-step timing. Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import torch

from ncvsd_inverse import training
from ncvsd_inverse.machine import PRECISIONS, describe_machine
from ncvsd_inverse.networks import build_teacher, count_parameters


class RandomImages:
    """PatchDataset stand-in: smooth random images, so no data files are needed."""

    def __init__(self, patch: int, channels: int):
        self.patch, self.channels = patch, channels

    def batch(self, size: int, generator: torch.Generator) -> torch.Tensor:
        low = torch.rand(size, self.channels, self.patch // 4 + 1, self.patch // 4 + 1, generator=generator)
        return torch.nn.functional.interpolate(low, size=(self.patch, self.patch), mode="bilinear") * 2 - 1


WARMUP_STEPS = 2


def seconds_per_step(make_run, steps: int) -> float:
    """Seconds per step of ``steps`` steps after :data:`WARMUP_STEPS`, in one run:
    ``make_run(out, total_steps, log_every)`` trains, logging every :data:`WARMUP_STEPS` steps to
    ``out/stats.jsonl``; each record's ``s_per_step`` covers the steps since the one before (the
    sample grid, validation and checkpoints are outside it)."""
    with tempfile.TemporaryDirectory() as out:
        make_run(Path(out), WARMUP_STEPS + steps, WARMUP_STEPS)
        records = [json.loads(line) for line in (Path(out) / "stats.jsonl").read_text().splitlines()]
    assert records[0]["step"] == WARMUP_STEPS and records[-1]["step"] == WARMUP_STEPS + steps
    return sum(r["s_per_step"] * (r["step"] - before["step"]) for before, r in zip(records, records[1:])) / steps


def measure(preset: str, steps: int, device: str, precision: str = "float32", compile_: bool = False) -> dict:
    teacher_cfg, distill_cfg = training.load_preset(preset)
    data = RandomImages(teacher_cfg.patch, teacher_cfg.network.img_channels)
    env = training.Distributed(device=torch.device(device))
    run_options = dict(checkpoint_every=10**9, precision=precision, compile=compile_)

    def teacher_run(out, n, log_every):
        torch.manual_seed(0)
        cfg = dataclasses.replace(teacher_cfg, steps=n, log_every=log_every, **run_options)
        training.train_teacher(build_teacher(teacher_cfg.network), data, cfg, out, env, quiet=True)

    torch.manual_seed(0)
    teacher = build_teacher(teacher_cfg.network).to(device).eval().requires_grad_(False)
    distill_data = RandomImages(distill_cfg.patch, teacher_cfg.network.img_channels)

    def distill_run(out, n, log_every):
        torch.manual_seed(0)
        g, f, d = training.build_distillation_nets(teacher, distill_cfg)
        cfg = dataclasses.replace(distill_cfg, steps=n, log_every=log_every, val_every=10**9, **run_options)
        training.distill(teacher, g, f, distill_data, cfg, out, disc=d, env=env, quiet=True)

    teacher_s = seconds_per_step(teacher_run, steps)
    distill_s = seconds_per_step(distill_run, steps)
    distill_images = distill_cfg.batch * (distill_cfg.fake_steps + 1)
    return {"preset": preset, "parameters": count_parameters(teacher), "precision": precision, "compile": compile_,
            "teacher_batch": teacher_cfg.batch, "teacher_patch": teacher_cfg.patch,
            "teacher_s_per_step": teacher_s, "teacher_images_per_s": teacher_cfg.batch / teacher_s,
            "distill_batch": distill_cfg.batch, "distill_patch": distill_cfg.patch,
            "distill_s_per_step": distill_s, "distill_images_per_s": distill_images / distill_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "cpu-small"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="forward-pass arithmetic, as ncvsd-train's --precision")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training forward passes")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    rows = [measure(p, args.steps, args.device, args.precision, args.compile) for p in args.presets]
    machine = describe_machine(args.device)
    print(f"precision {args.precision}, compile {args.compile}")
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
