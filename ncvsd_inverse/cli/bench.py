"""``ncvsd-bench``: run a benchmark suite (resumable; sharded across processes under torchrun)."""

from __future__ import annotations

from pathlib import Path

import click

from ncvsd_inverse.allocator import retain_freed_memory
from ncvsd_inverse.bench import report_suite, run_suite
from ncvsd_inverse.bench.suite import load_suite
from ncvsd_inverse.cli.common import user_errors, version_option

EXAMPLES = """
\b
Examples:
  ncvsd-bench smoke --out runs/bench-smoke                   # a packaged suite, in a minute
  ncvsd-bench benchmarks/suites/cbsd68-quick.yaml --out runs/quick --resume
  ncvsd-bench cbsd68-quick --out runs/q --first 2 --tasks sr4x --methods ncvsd,classical
  torchrun --nproc-per-node 2 -m ncvsd_inverse.cli.bench cbsd68-quick --out runs/q --resume
  ncvsd-bench cbsd68-quick --out runs/q --report-only        # interim report of the finished cells
  ncvsd-bench cbsd68-report --out runs/report --precision bfloat16   # on an AVX512-BF16 CPU
"""


def _names(values: tuple[str, ...]) -> list[str] | None:
    names = [name for value in values for name in value.split(",") if name]
    return names or None


@click.command(epilog=EXAMPLES)
@click.argument("suite")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the cells and the report.")
@click.option("--resume", is_flag=True, help="Continue the cells already in --out (changed settings rerun).")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Image folder instead of the suite's.")
@click.option("--first", type=int, default=None, help="Only the first N images (sorted by name).")
@click.option("--crop", type=int, default=None, help="Centre crop size instead of the suite's.")
@click.option("--tasks", multiple=True, help="Only these tasks (repeat or separate with commas).")
@click.option("--methods", multiple=True, help="Only these methods (repeat or separate with commas).")
@click.option("--generator", default=None, help="Generator checkpoint or run folder instead of the suite's.")
@click.option("--teacher", default=None,
              help="The prior of every method that runs on a teacher (the teacher chain, DPS, DiffPIR, DDRM, DAPS) "
                   "instead of the suite's: an ncvsd-train checkpoint or run folder, diffusers:PATH or "
                   "deepinv:NAME:WEIGHTS.")
@click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16"]), default=None,
              help="Network arithmetic instead of the suite's (bfloat16: about 1.8x faster where it is native, "
                   "AVX512-BF16 CPUs and GPUs; emulated elsewhere, many times slower; auto: bfloat16 where "
                   "native, else float32). Part of every cell's key, auto as what it resolved to.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (cuda:LOCAL_RANK under torchrun).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--report-only", is_flag=True,
              help="Run nothing: write the report of the cells already finished in --out (an interim report).")
@version_option
def main(suite: str, out: Path, resume: bool, data: Path | None, first: int | None, crop: int | None,
         tasks: tuple[str, ...], methods: tuple[str, ...], generator: str | None, teacher: str | None,
         precision: str | None, device: str, quiet: bool, report_only: bool) -> None:
    """Run the benchmark SUITE (a YAML file, or the name of one in benchmarks/suites/) and write
    results.json, results.md, grid-<task>.png and quality_vs_nfe.png into --out.

    Every method gets the same measurement of each (image, task), made once with seed
    `seed + image index`. Finished cells are kept in --out/cells: run the same command with
    --resume after an interruption and only the missing or changed cells run.
    """
    retain_freed_memory()
    with user_errors():
        checked = load_suite(suite, data=data, first=first, crop=crop, tasks=_names(tasks), methods=_names(methods),
                             generator=generator, teacher=teacher, precision=precision)
        if report_only:
            records = report_suite(checked, out, device=device)
        else:
            records = run_suite(checked, out, resume=resume, device=device, progress=not quiet)
        if records:
            click.echo((out / "results.md").read_text())


if __name__ == "__main__":
    main()
