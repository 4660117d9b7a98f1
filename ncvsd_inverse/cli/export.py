"""``ncvsd-export``: slim model files (EMA weights + config, no optimiser state) from training runs.

This is how the shipped default model in ``ncvsd_inverse/default_model/`` is made.
"""

from __future__ import annotations

from pathlib import Path

import click

from ncvsd_inverse.checkpoints import read_checkpoint, resolve_checkpoint, save_checkpoint
from ncvsd_inverse.cli.common import user_errors, version_option


def export_model(source: str | Path, kind: str, out_dir: Path) -> Path:
    """Write ``out_dir/<kind>.safetensors`` (+ .json) holding only ``ema.<kind>.*`` tensors."""
    tensors, meta = read_checkpoint(source)
    prefix = f"ema.{kind}."
    slim = {k: v for k, v in tensors.items() if k.startswith(prefix)}
    if not slim:
        raise ValueError(f"{source}: no {prefix}* weights (is it a {kind} checkpoint?)")
    config = {**meta["config"], "exported_from": str(resolve_checkpoint(source)), "step": meta["step"]}
    return write_model_file(out_dir, kind, slim, config, meta["step"], meta.get("stats"))


def write_model_file(out_dir: Path, kind: str, tensors: dict, config: dict, step: int,
                     stats: dict | None = None) -> Path:
    """``out_dir/<kind>.safetensors`` (+ .json): a slim model file, no ``latest`` links."""
    config = {k: v for k, v in config.items() if k != "images"}  # the image list lives in the model card
    out_dir.mkdir(parents=True, exist_ok=True)
    written = save_checkpoint(out_dir, step, tensors, config, stats)
    target = out_dir / f"{kind}.safetensors"
    written.rename(target)
    written.with_suffix(".json").rename(target.with_suffix(".json"))
    for link in ("latest.safetensors", "latest.json"):
        (out_dir / link).unlink(missing_ok=True)
    return target


@click.command()
@click.option("--teacher", type=click.Path(path_type=Path), help="ncvsd-train checkpoint or run folder.")
@click.option("--generator", type=click.Path(path_type=Path), help="ncvsd-distill checkpoint or run folder.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@version_option
def main(teacher, generator, out):
    """Export the EMA weights of a teacher and/or a generator as slim model files."""
    with user_errors():
        for source, kind in ((teacher, "teacher"), (generator, "generator")):
            if source is not None:
                click.echo(f"{kind}: {export_model(source, kind, out)}")


if __name__ == "__main__":
    main()
