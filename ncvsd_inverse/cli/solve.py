"""``ncvsd-solve``: recover an image from a degraded one with a task preset and a generative denoiser."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import numpy as np
import torch

from ncvsd_inverse import metrics
from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.api import load_model, resolve_device, solve
from ncvsd_inverse.cli.common import user_errors, version_option
from ncvsd_inverse.figures import std_map
from ncvsd_inverse.files import atomic_write_text
from ncvsd_inverse.io import ImageReadError, read_image, read_mask, write_image
from ncvsd_inverse.machine import PRECISIONS, resolve_precision
from ncvsd_inverse.operators import ImageTooSmallError, PhaseRetrieval
from ncvsd_inverse.priors import load_prior
from ncvsd_inverse.problem import pose_problem, simulate_problem
from ncvsd_inverse.tasks import available_tasks, load_task

EXAMPLES = """
\b
Examples:
  ncvsd-solve --task sr4x low_res.png                      # writes low_res_sr4x.png (4x larger)
  ncvsd-solve --task box_inpainting damaged.png --mask mask.png -o restored.png
  ncvsd-solve --task motion_deblur blurred.png --kernel kernel.npy --runs 4 --save-std std.png
  ncvsd-solve --task sr4x clean.png --simulate --report report.json    # degrade, solve, score
  ncvsd-solve --task sr4x low_res.png --prior teacher      # ablation: deterministic prior step
  ncvsd-solve --task sr4x low_res.png --precision float32  # force float32 (default: bf16 where native)
  ncvsd-solve --list-tasks
"""


def _read_measurement(path: Path) -> torch.Tensor:
    """An image file, or a ``.npy`` array ``(C, H, W)`` / ``(H, W)`` (phase-retrieval magnitudes)."""
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise ImageReadError(f"{path}: no such file")
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise ImageReadError(f"{path}: not a readable .npy array ({error})") from None
        tensor = torch.from_numpy(np.asarray(array, dtype=np.float32))
        return tensor.reshape(1, *([1] * (3 - tensor.ndim)), *tensor.shape)
    return read_image(path)


def _read_kernel(path: Path, image_shape: tuple[int, ...]) -> torch.Tensor:
    """A blur kernel from ``.npy`` or an image (gray levels), normalised to sum 1. One kernel for
    all channels: a ``.npy`` array must be 2-D (per-channel kernels are refused, not truncated)."""
    if path.suffix.lower() == ".npy":
        array = _read_measurement(path)
        if array.shape[:2] != (1, 1):
            raise ValueError(f"{path}: a blur kernel must be a 2-D array (one kernel for all channels), "
                             f"got shape {tuple(s for s in array.shape if s != 1) or (1,)}")
        kernel = array[0, 0]
    else:
        kernel = (read_image(path).mean(dim=1)[0] + 1) / 2
    if kernel.ndim != 2 or float(kernel.sum()) <= 0 or bool((kernel < 0).any()):
        raise ValueError(f"{path}: a blur kernel must be a 2-D array of non-negative values")
    if kernel.shape[0] > image_shape[-2] or kernel.shape[1] > image_shape[-1]:
        raise ValueError(f"{path}: kernel of {kernel.shape[0]}x{kernel.shape[1]} is larger than the "
                         f"{image_shape[-2]}x{image_shape[-1]} image")
    return kernel / kernel.sum()


def _check_writable(path: Path, what: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise OSError(f"cannot write the {what} {path}: folder {folder} does not exist or is not writable")
    if path.is_dir():
        raise OSError(f"cannot write the {what} {path}: it is a folder")


def _write_json(data: dict, path: Path) -> None:
    atomic_write_text(path, json.dumps(data, indent=2))


def _tile_option(value: str) -> int | str | None:
    """``--tile``: ``auto``, ``0`` (never) or a tile size in pixels."""
    if value == "auto":
        return "auto"
    try:
        size = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not auto, 0 or a number of pixels", param_hint="--tile") from None
    return size or None  # solve() refuses sizes below tiling.MIN_TILE in one line


@click.command(epilog=EXAMPLES)
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--task", metavar="NAME", help="Task preset: " + ", ".join(available_tasks()) + ".")
@click.option("--preset", type=click.Path(dir_okay=False, path_type=Path),
              help="Task preset YAML file (instead of --task).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output image (default: <stem>_<task>.png beside IMAGE).")
@click.option("--mask", type=click.Path(dir_okay=False, path_type=Path), help="Inpainting mask image (white = known).")
@click.option("--kernel", type=click.Path(dir_okay=False, path_type=Path), help="Blur kernel (.npy or image).")
@click.option("--simulate", is_flag=True,
              help="IMAGE is clean: degrade it (seeded), solve, and score the result "
                   "(SR crops it to a multiple of the factor).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the scores, NFE and seconds as JSON.")
@click.option("--runs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Posterior samples; the output is their mean.")
@click.option("--save-samples", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the individual samples.")
@click.option("--save-std", type=click.Path(dir_okay=False, path_type=Path),
              help="Uncertainty map (per-pixel std, colour-mapped PNG).")
@click.option("--model", type=click.Path(path_type=Path),
              help="Generator checkpoint or ncvsd-distill run folder (default: shipped model).")
@click.option("--prior", type=click.Choice(["ncvsd", "teacher"]), default="ncvsd", show_default=True,
              help="Prior step: the generative denoiser, or a denoiser's deterministic estimate (the teacher chain).")
@click.option("--teacher", metavar="SPEC",
              help="With --prior teacher, the denoiser: an ncvsd-train checkpoint or run folder, diffusers:PATH "
                   "(a UNet2DModel pipeline folder) or deepinv:NAME:WEIGHTS (drunet, diffunet-ffhq, "
                   "diffunet-imagenet). Default: the shipped teacher.")
@click.option("--steps", type=click.IntRange(min=1), help="Sampler steps (= NFE; default: the preset's); "
              "a count with its own schedule in the preset runs that schedule.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampler (and of --simulate's noise).")
@click.option("--device", help="cpu, cuda, cuda:1 ... (default: cuda if present).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="Network arithmetic. auto: bfloat16 where it is native (CPUs with AVX512-BF16/AMX, about "
                   "1.8x faster; GPUs), float32 elsewhere; a forced bfloat16 where it is emulated is many times "
                   "slower (a warning says so).")
@click.option("--likelihood-scale", type=click.FloatRange(min=0, min_open=True),
              help="Likelihood scale s (overrides the preset).")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path),
              help="torchvision AlexNet weights file for LPIPS.")
@click.option("--tile", default="auto", show_default=True, metavar="N|auto|0",
              help="Evaluate the network in overlapping tiles of at most N pixels (memory bounded by the tile); "
                   "auto: untiled when the solve fits in memory, else the largest tiles that fit; 0: never.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--list-tasks", is_flag=True, help="List the task presets and exit.")
@version_option
def main(image, task, preset, output, mask, kernel, simulate, report, runs, save_samples, save_std, model, prior,
         teacher, steps, seed, device, precision, likelihood_scale, lpips_weights, tile, quiet, list_tasks):
    """Recover IMAGE (a degraded photo) with a task preset and an NCVSD generative denoiser."""
    retain_freed_memory()
    if list_tasks:
        for name in available_tasks():
            click.echo(f"{name:18s} {load_task(name).description}")
        return
    with user_errors():
        if image is None:
            raise click.UsageError("missing IMAGE (see --help)")
        if (task is None) == (preset is None):
            raise click.UsageError("give exactly one of --task NAME or --preset FILE")
        spec = load_task(task if task is not None else preset)
        output = output or image.with_name(f"{image.stem}_{spec.name}.png")
        _check_writable(output, "output")
        for path, what in ((report, "report"), (save_std, "uncertainty map")):
            if path is not None:
                _check_writable(path, what)
        if save_samples is not None:
            save_samples.mkdir(parents=True, exist_ok=True)
        if teacher is not None and prior != "teacher":
            raise click.UsageError("--teacher is the prior of --prior teacher; for NCVSD pass the generator "
                                   "distilled from it with --model")
        loaded = (load_prior(teacher if teacher is not None else model, device) if prior == "teacher"
                  else load_model(model, "generator", device))

        observed = _read_measurement(image)
        given = {"mask": read_mask(mask) if mask is not None else None,
                 "kernel": _read_kernel(kernel, tuple(observed.shape)) if kernel is not None else None,
                 "runs": runs, "steps": steps, "likelihood_scale": likelihood_scale}
        clean = None
        try:
            if simulate:  # IMAGE is clean: degrade it with the task (seed), keep it for the scores
                problem, clean = simulate_problem(observed, spec, seed, **given)
            else:
                problem = pose_problem(observed, spec, **given)
        except ImageTooSmallError as error:
            raise ImageTooSmallError(f"{image}: {error}") from None
        result = solve(problem, model=loaded, runs=runs, seed=seed, device=device, prior=prior,
                       progress=not quiet, precision=precision, tile=_tile_option(tile))
        estimate = result.mean.cpu().clamp(-1, 1)
        write_image(estimate, output)
        if save_samples is not None:
            for index, sample in enumerate(result.samples[:, :1].cpu()):
                write_image(sample.clamp(-1, 1), save_samples / f"{output.stem}_sample{index:02d}.png")
        if save_std is not None:
            write_image(std_map(result.std[0]), save_std)

        arithmetic = resolve_precision(precision, resolve_device(device).type)
        summary = {"task": spec.name, "input": str(image), "output": str(output), "prior": prior,
                   "runs": runs, "precision": arithmetic, "nfe": result.nfe, "seconds": round(result.seconds, 3),
                   "seconds_per_image": round(result.seconds / observed.shape[0], 3),
                   "outside_network_fraction": round(result.outside_network_fraction, 4)}
        if clean is not None:
            scored = problem.operator.modulo_ambiguity(result.samples.cpu(), clean)
            if isinstance(problem.operator, PhaseRetrieval):  # an image and its twin are one answer
                summary["scored_modulo_twin"] = True
            summary["mean"] = metrics.image_scores(scored.mean(0), clean, lpips_weights)
            summary["sample"] = metrics.image_scores(scored[0], clean, lpips_weights)
            if summary["mean"]["lpips"] is None:
                too_small = min(estimate.shape[-2:]) < metrics.LPIPS_MIN_SIZE["alex"]
                summary["lpips_note"] = (f"LPIPS needs images of at least {metrics.LPIPS_MIN_SIZE['alex']} pixels "
                                         "a side" if too_small else metrics.lpips_status(weights=lpips_weights))
        if report is not None:
            _write_json(summary, report)
        if not quiet:
            line = f"{output}  ({result.nfe} NFE, {result.seconds:.1f} s"
            if clean is not None:
                m = summary["mean"]
                lp = "unavailable" if m["lpips"] is None else f"{m['lpips']:.4f}"
                line += f"; PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, LPIPS {lp}"
                if summary.get("scored_modulo_twin"):
                    line += "; scored modulo the 180-degree rotation, which has the same magnitudes"
            click.echo(line + ")", err=True)


if __name__ == "__main__":
    main()
