"""A suite's report: ``results.json`` (the list of records other tools read), ``run.json`` (the
suite's settings, the machine writing it, the cells per machine and the models' digests),
``results.md`` (the table, the machines the cells ran on and the deviations), ``grid-<task>.png``
(the first image under every method, labelled) and ``quality_vs_nfe.png`` (LPIPS and PSNR
against NFE, one column per task)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from .. import metrics
from ..figures import write_panel
from ..files import atomic_write, atomic_write_text
from ..io import read_image
from ..machine import machine_summary
from .methods import DEVIATIONS
from .suite import Suite

METRICS = ("psnr", "ssim", "lpips")


def _mean(values: list) -> float | None:
    """The mean, or None if any value is missing (a metric unavailable for some image)."""
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def aggregate(suite: Suite, cells: list[dict]) -> list[dict]:
    """One record per (task, method variant), averaged over the images, in first-seen order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for cell in cells:
        groups.setdefault((cell["task"], cell["label"]), []).append(cell)
    records = []
    for (task, label), group in groups.items():
        first = group[0]
        record = {"suite": suite.name, "task": task, "method": label, "nfe": _mean([c["nfe"] for c in group]),
                  "images": len(group)}
        for metric in METRICS:
            record[metric] = _mean([c["one"][metric] for c in group])
            means = [c["mean"] for c in group]
            record[f"{metric}_mean"] = None if any(m is None for m in means) else _mean([m[metric] for m in means])
        record["calibration"] = _mean([c["calibration"] for c in group]) if first["calibration"] is not None else None
        record["seconds_per_image"] = _mean([c["seconds_per_image"] for c in group])
        peaks = [c["peak_mem_mb"] for c in group if c["peak_mem_mb"] is not None]
        record["peak_mem_mb"] = max(peaks) if peaks else None
        record["settings"] = {"method": first["method"], **first["variant"], "runs": first["runs"]}
        records.append(record)
    return records


def _cell(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


TABLE_HEADER = ["| task | method | NFE | images | PSNR | SSIM | LPIPS | PSNR mean | LPIPS mean | calib. | s/image "
                "| peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]


def table_rows(records: list[dict]) -> list[str]:
    return [f"| {r['task']} | {r['method']} | {r['nfe']:.0f} | {r['images']} | {_cell(r['psnr'], 2)} "
            f"| {_cell(r['ssim'], 4)} | {_cell(r['lpips'], 4)} | {_cell(r['psnr_mean'], 2)} "
            f"| {_cell(r['lpips_mean'], 4)} | {_cell(r['calibration'], 3)} | {r['seconds_per_image']:.1f} "
            f"| {_cell(r['peak_mem_mb'], 0)} |" for r in records]


def summary_rows(records: list[dict]) -> list[str]:
    """One row per method variant, one column per task: PSNR / LPIPS of one sample (the
    headline comparison; the full table follows it)."""
    tasks = list(dict.fromkeys(r["task"] for r in records))
    by_cell = {(r["method"], r["task"]): r for r in records}
    labels = list(dict.fromkeys(r["method"] for r in records))
    rows = ["| method | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for label in labels:
        cells = [by_cell.get((label, task)) for task in tasks]
        rows.append(f"| {label} | " + " | ".join(
            "-" if r is None else f"{_cell(r['psnr'], 2)} / {_cell(r['lpips'], 3)}" for r in cells) + " |")
    return rows


PHASE_RETRIEVAL_SCORING = (
    "Phase retrieval is scored modulo its 180-degree twin, which has the same Fourier magnitudes: "
    "a cell's runs are put in the first run's orientation, then turned together if that is the "
    "truth's twin (docs/design.md, section 6). Restarts are kept by data misfit, never by the truth.")


def cell_machines(cells: list[dict]) -> dict[str, int]:
    """How many of ``cells`` ran on each machine (cells from before machines were recorded count
    as "not recorded"). A suite resumed elsewhere mixes machines, and each cell's seconds are its own
    machine's."""
    return dict(Counter(cell.get("machine", "not recorded") for cell in cells))


def machine_line(machines: dict[str, int]) -> str:
    """The report's line naming the machine its cells ran on, or every machine with its count."""
    if not machines:
        return f"Machine: {machine_summary()}"
    if len(machines) == 1:
        return f"Machine: {next(iter(machines))}"
    return ("Machines (each cell's seconds are its own machine's): "
            + "; ".join(f"{name} ({count} cells)" for name, count in machines.items()))


def images_source(suite: Suite) -> str:
    """Where the report's images came from: a published set whose files were checked against its
    sha256 manifest before the run (:mod:`ncvsd_inverse.datasets`), or a folder that was not."""
    if suite.data_set is not None:
        return f"the published set `{suite.data_set}` (every file sha256-checked against its manifest)"
    return f"the folder `{suite.folder.name}` (not a published set: files not checked)"


def markdown(suite: Suite, records: list[dict], digests: dict, common: list[dict] | None = None,
             missing: int = 0, machines: dict[str, int] | None = None) -> str:
    """The report's table; ``common``: the records again on the first images only, where every
    method ran (when some ran on fewer), as a second table for a like-for-like comparison;
    ``missing``: cells of the suite not finished yet (an interim report); ``machines``: the cells
    per machine (:func:`cell_machines`)."""
    interim = [f"**Interim report: {missing} cells of the suite are not finished yet**; each row holds the "
               "images its method has finished (the images column).", ""] if missing else []
    lines = [f"# {suite.name}", "", *interim,
             f"{max((r['images'] for r in records), default=0)} images from {images_source(suite)}"
             f"{f', centre {suite.crop}x{suite.crop} crops' if suite.crop else ''}; seed {suite.seed}; "
             f"{suite.runs} runs per sampling method; network in {suite.precision}. "
             "PSNR / SSIM / LPIPS of one sample, and of the mean of the runs (\"mean\" columns); "
             "calibration: fraction of pixels whose truth lies within mean +- 2 std of the runs; "
             "images: how many of them a method ran on (the first ones; costly peers may run on fewer).", "",
             "PSNR (dB) / LPIPS of one sample per method (the label's number is its NFE setting):", "",
             *summary_rows(records), "", *TABLE_HEADER, *table_rows(records)]
    if common:
        lines += ["", f"## Every method on the first {common[0]['images']} images", "",
                  "The same scores restricted to the images every method ran on: compare the costly peers here.",
                  "", *summary_rows(common), "", *TABLE_HEADER, *table_rows(common)]
    lines += ["", f"LPIPS: {metrics.lpips_status()}. {machine_line(machines or {})}.",
              "Models (sha256 of the weights): " + (", ".join(f"{k} `{v[:16]}`" for k, v in digests.items()) or "none"),
              ""]
    if "phase_retrieval" in suite.tasks:
        lines += [PHASE_RETRIEVAL_SCORING, ""]
    notes = [DEVIATIONS[m] for m in suite.methods if m in DEVIATIONS]
    if notes:
        lines += ["Deviations from the official defaults:", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def common_records(suite: Suite, cells: list[dict], records: list[dict]) -> list[dict] | None:
    """:func:`aggregate` over the first images only, where every method ran; None when all
    methods ran on the same number of images."""
    fewest = min((r["images"] for r in records), default=0)
    if fewest == max((r["images"] for r in records), default=0):
        return None
    return aggregate(suite, [cell for cell in cells if cell["index"] < fewest])


def write_grid(task: str, labels: list[str], folder: Path, path: Path) -> None:
    """Clean image, measurement and each method's first sample side by side, labelled."""
    columns = [("ground truth", folder / "clean.png"), ("measurement", folder / "measurement.png")]
    columns += [(label, folder / f"{label}.png") for label in labels if (folder / f"{label}.png").exists()]
    write_panel([(label, read_image(image_path)) for label, image_path in columns], path, title=task)


def write_quality_plot(records: list[dict], path: Path) -> None:
    """LPIPS (top) and PSNR (bottom) of one sample against NFE (log axis), one column per task;
    methods without network calls (classical) as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in records))
    figure, axes = plt.subplots(2, len(tasks), figsize=(3.4 * len(tasks), 5.6), squeeze=False)
    for column, task in enumerate(tasks):
        rows = [r for r in records if r["task"] == task]
        for row, metric in enumerate(("lpips", "psnr")):
            axis = axes[row][column]
            for method in dict.fromkeys(r["settings"]["method"] for r in rows):
                points = sorted((r["nfe"], r[metric], r["method"]) for r in rows
                                if r["settings"]["method"] == method and r[metric] is not None)
                network = [(n, v) for n, v, _ in points if n > 0]
                if network:
                    axis.plot(*zip(*network), marker="o", label=method)
                for n, v, label in points:
                    if n == 0:
                        axis.axhline(v, linestyle="--", linewidth=0.8, color="gray")
                        axis.annotate(label, (1, v), fontsize=6, color="gray")
            axis.set_xscale("log")
            axis.set_xlabel("NFE")
            axis.set_ylabel("LPIPS (lower is better)" if metric == "lpips" else "PSNR (dB)")
            axis.grid(alpha=0.3)
            if row == 0:
                axis.set_title(task, fontsize=9)
        axes[0][column].legend(fontsize=6)
    figure.tight_layout()
    atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=110))
    plt.close(figure)


def write_report(suite: Suite, cells: list[dict], out: Path, digests: dict, missing: int = 0) -> list[dict]:
    """Write the four outputs of a suite's finished ``cells`` into ``out`` (``missing``: cells not
    finished yet, said in the report); returns the records."""
    records, machines = aggregate(suite, cells), cell_machines(cells)
    about = {"suite": suite.name, "suite_settings": suite.describe(), "machine": machine_summary(),
             "cell_machines": machines, "missing_cells": missing, "lpips": metrics.lpips_status(),
             "models_sha256": digests,
             "deviations": {m: DEVIATIONS[m] for m in suite.methods if m in DEVIATIONS}}
    atomic_write_text(out / "results.json", json.dumps(records, indent=2) + "\n")
    atomic_write_text(out / "run.json", json.dumps(about, indent=2) + "\n")
    atomic_write_text(out / "results.md",
                      markdown(suite, records, digests, common_records(suite, cells, records), missing, machines))
    for task in suite.tasks:
        labels = list(dict.fromkeys(r["method"] for r in records if r["task"] == task))
        if labels and (out / "images" / task / "clean.png").exists():  # an interim report may have none yet
            write_grid(task, labels, out / "images" / task, out / f"grid-{task}.png")
    write_quality_plot(records, out / "quality_vs_nfe.png")
    return records


__all__ = ["aggregate", "markdown", "write_report"]
