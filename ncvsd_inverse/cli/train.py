"""``ncvsd-train`` (teacher, DESIGN 3.1) and ``ncvsd-distill`` (NCVSD, DESIGN 3.4).

Both run as one process or under ``torchrun --nproc_per_node=K`` (same code path).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

import click
import torch

from ncvsd_inverse import training
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.api import resolve_device
from ncvsd_inverse.cli.common import user_errors, version_option
from ncvsd_inverse.files import hold_folder
from ncvsd_inverse.io import list_images, read_name_list
from ncvsd_inverse.machine import PRECISIONS
from ncvsd_inverse.networks import build_teacher, count_parameters
from ncvsd_inverse.priors import load_prior


def _dataset(data: Path, patch: int, channels: int, exclude: Path | None, quiet: bool, env,
             batch: int) -> training.PatchDataset:
    excluded = set(read_name_list(exclude) or [])
    files = [p.name for p in list_images(data) if p.name not in excluded]
    dataset = training.PatchDataset(data, patch, channels, files=files)
    if env.is_main and not quiet:
        click.echo(f"data: {len(dataset)} images from {data}"
                   + (f" ({len(excluded)} excluded by list)" if excluded else "")
                   + (f", {len(dataset.skipped)} skipped (unreadable or too small)" if dataset.skipped else ""),
                   err=True)
    if env.is_main and len(dataset) < batch * env.world:
        click.echo(f"note: {len(dataset)} image(s) for a batch of {batch * env.world} patches: every batch repeats "
                   "images (random crops of them); more images train a better model", err=True)
    return dataset


COMMON = [
    click.option("--preset", default="cpu-small", show_default=True, help="Training preset name or YAML file."),
    click.option("--data", type=click.Path(file_okay=False, path_type=Path), required=True,
                 help="Folder of training images (PNG/JPEG/TIFF/BMP, any sizes)."),
    click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
                 help="Run folder: checkpoints, stats.jsonl, latest.*"),
    click.option("--steps", type=int, default=None, help="Total steps (overrides the preset)."),
    click.option("--cooldown-steps", type=click.IntRange(min=0), default=None,
                 help="Decay the learning rate linearly to zero over the run's last N steps (overrides the "
                      "preset's cooldown_steps, default 0: none); to finish a run, e.g. with --resume --steps "
                      "20000 --cooldown-steps 2000, or in a branch with --init-from."),
    click.option("--precision", type=click.Choice(PRECISIONS), default=None,
                 help="Forward-pass arithmetic (overrides the preset's, default float32): bfloat16 autocast, "
                      "or auto = bfloat16 where the CPU/GPU has it natively (about 1.6x per step on an "
                      "AVX512-BF16 CPU); weights and optimiser stay float32."),
    click.option("--compile/--no-compile", "compile_", default=None,
                 help="torch.compile the training forward passes (overrides the preset's compile, default "
                      "off): the same arithmetic in fewer passes over memory, after a compile of minutes at the "
                      "start; needs a C++ compiler on a CPU. With bfloat16 on a 2-core AVX512-BF16 CPU about "
                      "1.5x per teacher step and 1.2x per distillation step; in float32 on an AVX2 CPU "
                      "nothing (0.9-1.1x)."),
    click.option("--keep-checkpoints", type=click.IntRange(min=0), default=None,
                 help="Keep only the newest N checkpoints in OUT (and those latest and best point at); "
                      "overrides the preset's keep_checkpoints, default 0: keep all."),
    click.option("--resume", is_flag=True, help="Continue from OUT/latest."),
    click.option("--init-from", type=click.Path(exists=True, path_type=Path), default=None,
                 help="Start a new run in OUT from another run's checkpoint (file or run folder): its "
                      "weights, optimiser state and step, e.g. to go on with another preset."),
    click.option("--exclude", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                 help="Text file of image file names to leave out (e.g. a validation split)."),
    click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if present)."),
    click.option("--quiet", is_flag=True, help="No progress bar."),
]


def common_options(func):
    for option in reversed(COMMON):
        func = option(func)
    return func


def cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend (inductor) would build with, if any."""
    return os.environ.get("CXX") or next(filter(None, map(shutil.which, ("g++", "c++", "clang++"))), None)


def _setup(preset: str, section: str, out: Path, resume: bool, device: str | None, init_from: Path | None,
           overrides: dict):
    """``(env, config)``: join torchrun if present, load the preset's ``"teacher"`` or
    ``"distill"`` section with the command line's ``overrides`` of its fields (``--steps``,
    ``--cooldown-steps``, ``--keep-checkpoints``, ``--precision``, ``--compile``; None: the preset's), and
    refuse to overwrite a run without ``--resume``."""
    if init_from is not None and resume:
        raise ValueError("--init-from starts a new run in OUT; leave out --resume (use --resume alone to "
                         "continue that run later)")
    if device is not None:
        resolve_device(device)  # one line for a device this machine does not have
    retain_freed_memory()  # fewer page faults per step (ncvsd_inverse/allocator.py)
    env = training.setup_distributed(device)
    teacher_cfg, distill_cfg = training.load_preset(preset)
    cfg = {"teacher": teacher_cfg, "distill": distill_cfg}[section]
    cfg = dataclasses.replace(cfg, **{name: value for name, value in overrides.items() if value is not None})
    training.check_ranges(cfg, "the command line")
    if cfg.compile and env.device.type == "cpu" and not cpp_compiler():
        raise ValueError("--compile (or compile: true) on a CPU needs a C++ compiler (g++, c++ or clang++ on PATH, "
                         "or CXX); none was found: install one or pass --no-compile")
    if (out / "latest.safetensors").exists() and not resume:
        raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    torch.manual_seed(cfg.seed)
    return env, cfg


@click.command(epilog="""\b
Examples:
  ncvsd-train --preset cpu-small --data images/ --out runs/teacher
  ncvsd-train --preset cpu-small --data images/ --out runs/teacher --resume
  ncvsd-train --preset cpu-small --data images/ --out runs/teacher --precision auto
  ncvsd-train --preset cpu-small --data images/ --out runs/teacher --precision auto --compile
  ncvsd-train --preset my-recipe.yaml --data images/ --out runs/teacher2 --init-from runs/teacher
  ncvsd-train --preset cpu-small --data images/ --out runs/teacher --resume --steps 20000 --cooldown-steps 2000
  torchrun --nproc_per_node=2 -m ncvsd_inverse.cli.train teacher --preset tiny --data images/ --out runs/t
""")
@common_options
@version_option
def train_main(preset, data, out, steps, cooldown_steps, precision, compile_, keep_checkpoints, resume, init_from,
               exclude, device, quiet):
    """Train an EDM teacher denoiser (DESIGN 3.1) on random patches of a folder of images."""
    with user_errors():
        env, cfg = _setup(preset, "teacher", out, resume, device, init_from,
                          dict(steps=steps, cooldown_steps=cooldown_steps, precision=precision,
                               compile=compile_, keep_checkpoints=keep_checkpoints))
        teacher = build_teacher(cfg.network)
        dataset = _dataset(data, cfg.patch, cfg.network.img_channels, exclude, quiet, env, cfg.batch)
        if env.is_main and not quiet:
            click.echo(f"teacher: {count_parameters(teacher):,} parameters, {env.world} process(es) on {env.device}",
                       err=True)
        extra = {"data": str(data), "images": dataset.names, "preset": str(preset)}
        try:
            with hold_folder(out, f".lock-rank{env.rank}"):  # one run per folder (a second one stops at once)
                training.train_teacher(teacher, dataset, cfg, out, env, resume=resume, quiet=quiet,
                                       extra_config=extra, init_from=init_from)
        finally:
            training.teardown_distributed()


@click.command(epilog="""\b
Examples:
  ncvsd-distill --teacher runs/teacher --preset cpu-small --data images/ --out runs/ncvsd
  ncvsd-distill --teacher runs/teacher --data images/ --out runs/ncvsd --resume
  ncvsd-distill --teacher runs/teacher --preset finetune.yaml --data images/ --out runs/ft \\
      --init-from runs/ncvsd/checkpoint-0003000.safetensors --steps 3500
""")
@click.option("--teacher", "teacher_path", required=True,
              help="The teacher: an ncvsd-train checkpoint or run folder, diffusers:PATH (a UNet2DModel pipeline "
                   "folder) or deepinv:NAME:WEIGHTS. A foreign network is distilled with the condition joined at "
                   "its first convolution and without the GAN term (set gan_scale: 0).")
@click.option("--val-data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of validation images for the diagnostic (default: fixed training patches).")
@click.option("--val-list", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Text file naming the validation images to use from --val-data.")
@common_options
@version_option
def distill_main(teacher_path, val_data, val_list, preset, data, out, steps, cooldown_steps, precision, compile_,
                 keep_checkpoints, resume, init_from, exclude, device, quiet):
    """Distill a teacher into a generative denoiser with NCVSD (DESIGN 3.4)."""
    with user_errors():
        env, cfg = _setup(preset, "distill", out, resume, device, init_from,
                          dict(steps=steps, cooldown_steps=cooldown_steps, precision=precision,
                               compile=compile_, keep_checkpoints=keep_checkpoints))
        teacher = load_prior(teacher_path, env.device)
        channels = teacher.img_channels or 3
        generator_net, fake, disc = training.build_distillation_nets(teacher, cfg)
        dataset = _dataset(data, cfg.patch, channels, exclude, quiet, env, cfg.batch)
        val_images = None
        if val_data is not None:
            val_set = training.PatchDataset(val_data, cfg.val_patch, channels,
                                            files=read_name_list(val_list))
            val_images = val_set.batch(cfg.val_images, torch.Generator().manual_seed(training.VALIDATION_SEED))
        extra = {"teacher_checkpoint": str(teacher_path),
                 "data": str(data), "images": dataset.names, "preset": str(preset)}
        try:
            with hold_folder(out, f".lock-rank{env.rank}"):
                training.distill(teacher, generator_net, fake, dataset, cfg, out, disc=disc, val_images=val_images,
                                 env=env, resume=resume, quiet=quiet, extra_config=extra, init_from=init_from)
        finally:
            training.teardown_distributed()


@click.group()
@version_option
def cli():
    """Entry for ``python -m ncvsd_inverse.cli.train`` (e.g. under torchrun)."""


cli.add_command(train_main, "teacher")
cli.add_command(distill_main, "distill")

if __name__ == "__main__":
    sys.exit(cli())
