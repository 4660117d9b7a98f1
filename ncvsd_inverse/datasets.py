"""Named image sets for benchmark suites: where each is published, and its sha256 manifest.

A suite names its images by set (``data: {set: cbsd68, crop: 128, first: 8}``). The images are
not in the package (but for the few small ones of ``smoke``): the folder is ``--data DIR``, or
``$NCVSD_DATA/<set>``. The package ships each set's manifest (``sha256sum`` output), and before a
run every image a suite reads is checked against it, so that a report can say that its images
are the exact published files.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .files import sha256_of

DATA_ENV = "NCVSD_DATA"
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
MANIFEST_DIR = PACKAGE_DATA / "manifests"
EXAMPLES_DIR = PACKAGE_DATA / "examples"


class DataSetError(ValueError):
    """A named set that cannot be found or whose files differ from the published ones."""


@dataclasses.dataclass(frozen=True)
class DataSet:
    """A published image set: ``published`` says where its exact files come from."""

    name: str
    published: str
    packaged: bool = False

    @property
    def manifest_path(self) -> Path:
        return MANIFEST_DIR / f"{self.name}.sha256"

    def manifest(self) -> dict[str, str]:
        """File name -> sha256, as ``sha256sum`` wrote it."""
        lines = self.manifest_path.read_text().splitlines()
        return {name.strip().lstrip("*"): digest for digest, name in (line.split(maxsplit=1) for line in lines if line)}


DATA_SETS = {data_set.name: data_set for data_set in (
    DataSet("cbsd68", "github.com/cszn/FFDNet, commit e787f46d, testsets/CBSD68/ (68 PNG)"),
    DataSet("cbsd432", "github.com/Magauiya/Extended_SURE, commit 1bcec3b6, Dataset/CBSD432/ (432 JPG)"),
    DataSet("mcmaster18", "github.com/cszn/FFDNet, commit e787f46d, testsets/McMaster/ (18 TIF)"),
    DataSet("set5", "github.com/cszn/DnCNN, commit e93b2781, testsets/Set5/ (5 BMP)"),
    DataSet("set14", "github.com/cszn/DnCNN, commit e93b2781, testsets/Set14/ (14 BMP)"),
    DataSet("ffhq_val", "github.com/zhangbingliang2019/DAPS (commit 098df6b7, dataset/demo-ffhq/), "
                        "DPS2022/diffusion-posterior-sampling (commit effbde73, data/samples/) and "
                        "yuanzhi-zhu/DiffPIR (commit 111d26e8, testsets/demo_test/): 17 PNG"),
    DataSet("celebahq", "github.com/wyhuai/DDNM, commit 00b58eac, exp/datasets/celeba_hq/face/ (8 PNG)"),
    DataSet("smoke", "this package (64x64 centre crops of 3 CBSD68 images)", packaged=True),
)}


def example_image(name: str = "tiger.png") -> Path:
    """The path of an example image shipped in the package: ``tiger.png`` (256x256, the centre
    crop of CBSD68 ``108005``), ``tiger_sr4x.png`` (its ``sr4x`` measurement, 64x64),
    ``tiger_box_inpainting.png`` and its ``tiger_box_inpainting_mask.png`` (white = known)."""
    path = EXAMPLES_DIR / name
    if not path.is_file():
        shipped = ", ".join(sorted(p.name for p in EXAMPLES_DIR.glob("*.png")))
        raise FileNotFoundError(f"no example image {name!r} in the package (shipped: {shipped})")
    return path


def known_set(name: str) -> DataSet:
    """The set called ``name``; :class:`DataSetError` lists the known ones otherwise."""
    if name not in DATA_SETS:
        raise DataSetError(f"unknown data set {name!r} (known: {', '.join(sorted(DATA_SETS))})")
    return DATA_SETS[name]


def _how_to_get(data_set: DataSet) -> str:
    return (f"it is published at {data_set.published}; put it in $NCVSD_DATA/{data_set.name} or pass --data DIR, "
            f"and check it with: cd DIR && sha256sum -c {data_set.manifest_path}")


def locate_set(name: str, folder: str | Path | None = None) -> Path:
    """The folder of set ``name``: ``folder`` if given, else ``$NCVSD_DATA/<name>``, else the
    package's own copy (``smoke`` only). One-line :class:`DataSetError` when there is none."""
    data_set = known_set(name)
    if folder is not None:
        candidate = Path(folder).expanduser()
    elif os.environ.get(DATA_ENV) and (Path(os.environ[DATA_ENV]).expanduser() / name).is_dir():
        candidate = Path(os.environ[DATA_ENV]).expanduser() / name
    elif data_set.packaged:
        candidate = PACKAGE_DATA / name
    else:
        where = f"${DATA_ENV}/{name}" if os.environ.get(DATA_ENV) else f"--data DIR or ${DATA_ENV}/{name} (unset)"
        raise DataSetError(f"data set {name!r} not found in {where}: {_how_to_get(data_set)}")
    if not candidate.is_dir():
        raise DataSetError(f"data set {name!r}: no such folder {candidate}: {_how_to_get(data_set)}")
    return candidate


def verify_files(name: str, folder: Path, file_names: list[str]) -> None:
    """Check that each of ``file_names`` in ``folder`` is byte for byte the published file of set
    ``name``; :class:`DataSetError` names the first that is not (or is not in the set at all)."""
    data_set = known_set(name)
    manifest = data_set.manifest()
    for file_name in file_names:
        if file_name not in manifest:
            raise DataSetError(f"data set {name!r}: {folder / file_name} is not one of its files: "
                               + _how_to_get(data_set))
        if sha256_of(Path(folder) / file_name) != manifest[file_name]:
            raise DataSetError(f"data set {name!r}: {folder / file_name} differs from the published file "
                               f"(sha256): {_how_to_get(data_set)}")


__all__ = ["DATA_ENV", "DATA_SETS", "DataSet", "DataSetError", "known_set", "locate_set", "verify_files"]
