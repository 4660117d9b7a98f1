"""Benchmark suite files: data x tasks x methods x seeds, as YAML, checked in full before anything runs.

```yaml
name: cbsd68-quick
data: {set: cbsd68, crop: 128, first: 8}   # a published set (or folder: PATH); list: FILE of names
tasks: [sr4x, box_inpainting, random_inpainting, gaussian_deblur, motion_deblur]
seed: 0
runs: 4                      # posterior samples per image for the sampling methods
precision: float32           # the network's arithmetic (float32 | bfloat16 | auto: bfloat16 where native)
generator: null              # a checkpoint or run folder (null: the shipped model); teacher: likewise
methods:
  ncvsd: {steps: [50, 20, 10]}
  pnp_teacher: {steps: [50, 20, 10]}
  dps: {steps: 1000, runs: 1, images: 2}   # images: only the suite's first N images for this method
  classical: {}
```
Paths are relative to the suite file. Every error names the file and the entry.

``data.set`` names a published image set (:mod:`ncvsd_inverse.datasets`): its folder is
``--data DIR`` or ``$NCVSD_DATA/<set>``, and every image a run reads is checked against the set's
sha256 manifest. ``data.folder`` is any folder of images (not checked). A suite with neither
needs ``--data``. The packaged suites live in ``benchmarks/suites/`` of the repository and install
as ``ncvsd_inverse.bench.suites``.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

from ncvsd_inverse.tasks import TaskError, load_task

from ..datasets import DataSetError, locate_set
from ..files import read_yaml
from ..io import read_name_list
from ..machine import PRECISIONS
from .methods import METHODS, MethodSettingsError

SUITE_DIR = Path(str(resources.files("ncvsd_inverse.bench.suites")))
SUITE_KEYS = ("name", "data", "tasks", "seed", "runs", "precision", "generator", "teacher", "methods")
DATA_KEYS = ("set", "folder", "crop", "first", "list")


class SuiteError(ValueError):
    """A suite file that cannot be run; the message names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class Suite:
    """A checked suite. ``methods`` maps each method name to its complete settings."""

    name: str
    source: str
    folder: Path
    crop: int | None
    first: int | None
    names: tuple[str, ...] | None
    tasks: tuple[str, ...]
    seed: int
    runs: int
    precision: str
    generator: str | None
    teacher: str | None
    methods: dict
    method_images: dict = dataclasses.field(default_factory=dict)
    data_set: str | None = None  # the published set the images must match (None: any folder)

    def images_for(self, method: str) -> int | None:
        """How many of the suite's images ``method`` runs on (None: all of them)."""
        return self.method_images.get(method)

    def describe(self) -> dict:
        """The suite as plain data (what results.json records under ``suite_settings``)."""
        plain = dataclasses.asdict(self)
        plain["folder"] = str(self.folder)
        return plain


def _count(value, where: str, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SuiteError(f"{where}: must be an integer >= {low}, got {value!r}")
    return value


def _path(value, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise SuiteError(f"{where}: must be a path, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A suite file: a path, or the name of one in ``benchmarks/suites/`` (``smoke``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = SUITE_DIR / f"{name_or_path}.yaml"
    if packaged.is_file():
        return packaged
    known = ", ".join(sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))) if SUITE_DIR.is_dir() else "none"
    raise SuiteError(f"no suite file {str(name_or_path)!r} (suites in {SUITE_DIR}: {known})")


def load_suite(name_or_path: str | Path, data: str | Path | None = None, first: int | None = None,
               crop: int | None = None, tasks: list[str] | None = None, methods: list[str] | None = None,
               generator: str | None = None, teacher: str | None = None, precision: str | None = None) -> Suite:
    """Read and check a suite file; the keyword arguments override it (a quick run)."""
    path = resolve_suite_path(name_or_path)
    source = str(path)
    raw = read_yaml(path, SuiteError)
    if not isinstance(raw, dict):
        raise SuiteError(f"{source}: a suite must be a YAML mapping")
    unknown = sorted(set(raw) - set(SUITE_KEYS))
    if unknown:
        raise SuiteError(f"{source}: unknown key '{unknown[0]}' (known: {', '.join(SUITE_KEYS)})")
    base = path.resolve().parent

    data_section = raw.get("data")
    if not isinstance(data_section, dict):
        raise SuiteError(f"{source}: data: must be a mapping with a set or a folder")
    unknown = sorted(set(data_section) - set(DATA_KEYS))
    if unknown:
        raise SuiteError(f"{source}: data.{unknown[0]}: unknown key (known: {', '.join(DATA_KEYS)})")
    data_set, folder = data_section.get("set"), data_section.get("folder")
    if data_set is not None and folder is not None:
        raise SuiteError(f"{source}: data: give a set or a folder, not both")
    if data_set is not None:
        if not isinstance(data_set, str):
            raise SuiteError(f"{source}: data.set: must be the name of a data set, got {data_set!r}")
        try:
            folder = locate_set(data_set, data)
        except DataSetError as error:
            raise SuiteError(f"{source}: data.set: {error}") from None
    elif data is not None:
        folder = Path(data).expanduser()
    elif folder is None:
        raise SuiteError(f"{source}: data: the suite names no image folder: pass --data DIR")
    else:
        folder = _path(folder, f"{source}: data.folder", base)
    if not folder.is_dir():
        raise SuiteError(f"{source}: data.folder: no such folder {folder}")
    names = None
    if data_section.get("list") is not None:
        list_path = _path(data_section["list"], f"{source}: data.list", base)
        if not list_path.is_file():
            raise SuiteError(f"{source}: data.list: no such file {list_path}")
        names = tuple(read_name_list(list_path))
    crop = _count(crop if crop is not None else data_section.get("crop"), f"{source}: data.crop", 8, allow_none=True)
    first = _count(first if first is not None else data_section.get("first"), f"{source}: data.first", 1,
                   allow_none=True)

    task_names = tasks if tasks else raw.get("tasks")
    if not isinstance(task_names, list) or not task_names:
        raise SuiteError(f"{source}: tasks: must be a non-empty list of task presets")
    for index, task in enumerate(task_names):
        try:
            load_task(task)
        except (TaskError, TypeError) as error:
            raise SuiteError(f"{source}: tasks[{index}]: {error}") from None

    method_section = raw.get("methods")
    if not isinstance(method_section, dict) or not method_section:
        raise SuiteError(f"{source}: methods: must map method names to their settings")
    chosen = methods if methods else list(method_section)
    checked, method_images = {}, {}
    for name in chosen:
        if name not in METHODS:
            raise SuiteError(f"{source}: methods.{name}: unknown method (known: {', '.join(METHODS)})")
        raw_settings = method_section.get(name)
        if isinstance(raw_settings, dict) and "images" in raw_settings:
            raw_settings = dict(raw_settings)
            method_images[name] = _count(raw_settings.pop("images"), f"{source}: methods.{name}.images", 1,
                                         allow_none=True)
        try:
            checked[name] = METHODS[name].settings(raw_settings, f"{source}: methods.{name}")
        except MethodSettingsError as error:
            raise SuiteError(str(error)) from None

    precision = precision if precision is not None else raw.get("precision", "float32")
    if precision not in PRECISIONS:
        raise SuiteError(f"{source}: precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    models = {}
    for kind, given in (("generator", generator), ("teacher", teacher)):
        value = raw.get(kind)
        foreign = isinstance(value, str) and value.startswith(("diffusers:", "deepinv:"))  # a prior spec, not a path
        models[kind] = given if given is not None else None if value is None else value if foreign else str(
            _path(value, f"{source}: {kind}", base))
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise SuiteError(f"{source}: name: must be a non-empty string, got {name!r}")
    return Suite(name=name, source=source, folder=folder, crop=crop, first=first, names=names,
                 tasks=tuple(task_names), seed=_count(raw.get("seed", 0), f"{source}: seed", 0),
                 runs=_count(raw.get("runs", 1), f"{source}: runs", 1), precision=precision,
                 generator=models["generator"], teacher=models["teacher"], methods=checked,
                 method_images={k: v for k, v in method_images.items() if v is not None}, data_set=data_set)
