"""Task presets: a forward model, its measurement noise and the solver settings, as plain YAML.

``load_task("sr4x")`` reads ``tasks/sr4x.yaml`` shipped with the package; ``load_task(path)``
reads a user's copy. Unknown keys and out-of-range values raise :class:`TaskError` naming the
key and the file.

A preset's ``sampler`` holds the settings for its own number of steps; ``schedules`` may hold
other step counts' settings (those that differ), e.g. ``schedules: {50: {rho: 2.0}}``: asking
for 50 steps then runs rho 2 (:meth:`Task.sampler_for`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import yaml

from ncvsd_inverse.files import read_yaml
from ncvsd_inverse.operators import (
    Blur,
    Denoising,
    Inpainting,
    Operator,
    PhaseRetrieval,
    SuperResolution,
    box_mask,
    gaussian_kernel,
    motion_kernel,
    random_mask,
)

PRESET_DIR = Path(__file__).resolve().parent


class TaskError(ValueError):
    """A preset that cannot be loaded; the message names the file and the key."""


@dataclasses.dataclass(frozen=True)
class Field:
    """One allowed key: its type, a range check (with a description of the range) and a default."""

    value_type: type
    check: Callable[[Any], bool] = lambda value: True
    allowed: str = ""
    default: Any = None


def _positive(value_type=float, default=None):
    return Field(value_type, lambda v: v > 0, "> 0", default)


def _fraction(default=None):
    return Field(float, lambda v: 0 < v < 1, "strictly between 0 and 1", default)


def _choice(*options, default=None):
    return Field(str, lambda v: v in options, f"one of {', '.join(options)}", default)


def _int_at_least(low, default=None):
    return Field(int, lambda v: v >= low, f">= {low}", default)


OPERATOR_FIELDS: dict[str, dict[str, Field]] = {
    "super_resolution": {"factor": _int_at_least(1, 4),
                         "filter": _choice("bicubic", "box", "gaussian", default="bicubic")},
    "inpainting": {"mask": _choice("box", "random"),
                   "box_fraction": _fraction(0.5),
                   "missing_fraction": _fraction(0.7),
                   "seed": _int_at_least(0, 0)},
    "blur": {"kernel": _choice("gaussian", "motion"),
             "kernel_size": _int_at_least(3, 61),
             "kernel_std": _positive(float, 3.0),
             "intensity": Field(float, lambda v: 0 <= v <= 1, "between 0 and 1", 0.5),
             "seed": _int_at_least(0, 0)},
    "denoising": {},
    "phase_retrieval": {"oversampling": Field(float, lambda v: v >= 1, ">= 1", 2.0),
                        "langevin_steps": Field(int, lambda v: 1 <= v <= 10000, "1 to 10000", 50)},
}

#: Where the solver's chain starts (DESIGN 3.6): zeros, ``A^+ y`` or the classical reconstruction.
INITS = ("zero", "pseudo_inverse", "classical")

SAMPLER_FIELDS: dict[str, Field] = {
    "steps": _int_at_least(1, 50),
    "rho": _positive(float, 2.0),
    "sigma_max": Field(float, lambda v: 0 < v <= 1000, "in (0, 1000]", 80.0),
    "sigma_min": _positive(float, 0.002),
    "likelihood_scale": _positive(float, 0.05),
    "ema_sigma": Field(float, lambda v: v >= 0, ">= 0 (0 = no EMA)", 0.0),
    "ema_decay": Field(float, lambda v: 0 <= v < 1, "in [0, 1)", 0.0),
    "init": _choice(*INITS, default="zero"),
    "restarts": _int_at_least(1, 1),
}

TOP_FIELDS = {"name", "description", "sigma_y", "operator", "sampler", "schedules"}


def _validate(values: dict, fields: dict[str, Field], where: str, source: str) -> dict:
    """Check keys and ranges; fill defaults. ``where`` names the section in messages."""
    if not isinstance(values, dict):
        raise TaskError(f"{source}: '{where}' must be a mapping, got {type(values).__name__}")
    unknown = sorted(str(key) for key in set(values) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(fields)) or "none"
        raise TaskError(f"{source}: unknown key '{where}.{unknown[0]}' (allowed: {allowed})")
    checked = {}
    for key, field in fields.items():
        value = values.get(key, field.default)
        if value is None:
            raise TaskError(f"{source}: missing key '{where}.{key}'")
        if field.value_type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, field.value_type) or isinstance(value, bool) and field.value_type is not bool:
            raise TaskError(f"{source}: '{where}.{key}' must be {field.value_type.__name__}, got {value!r}")
        if not field.check(value):
            raise TaskError(f"{source}: '{where}.{key}' = {value!r} is out of range ({field.allowed})")
        checked[key] = value
    return checked


@dataclasses.dataclass
class Task:
    """A loaded preset. ``operator`` holds the forward-model settings, ``sampler`` the solver's."""

    name: str
    description: str
    sigma_y: float
    operator: dict
    sampler: dict
    source: str = "<dict>"
    #: other step counts' sampler settings, ``{steps: {key: value}}`` (only the keys that differ)
    schedules: dict = dataclasses.field(default_factory=dict)

    @property
    def operator_type(self) -> str:
        return self.operator["type"]

    def build_operator(self, shape: tuple[int, ...], mask=None, kernel=None) -> Operator:
        """The forward model for a clean image of ``shape`` ``(N, C, H, W)`` (or ``(H, W)``).

        ``mask`` ((H, W), 1 = known) or ``kernel`` (2-D, sum 1) replace the preset's own for
        inpainting / deblurring tasks. Raises ``ImageTooSmallError`` when the image is too small.
        """
        height, width = shape[-2:]
        settings, operator_type = self.operator, self.operator["type"]
        if (mask is not None and operator_type != "inpainting") or (kernel is not None and operator_type != "blur"):
            raise TaskError(f"task {self.name} ({operator_type}) takes no {'mask' if mask is not None else 'kernel'}")
        if operator_type == "super_resolution":
            op = SuperResolution(settings["factor"], settings["filter"], image_size=(height, width))
        elif operator_type == "inpainting":
            if mask is None:
                mask = (box_mask(height, width, settings["box_fraction"]) if settings["mask"] == "box"
                        else random_mask(height, width, settings["missing_fraction"], settings["seed"]))
            op = Inpainting(mask)
        elif operator_type == "blur":
            if kernel is None:
                kernel = (gaussian_kernel(settings["kernel_size"], settings["kernel_std"])
                          if settings["kernel"] == "gaussian"
                          else motion_kernel(settings["kernel_size"], settings["intensity"], settings["seed"]))
            op = Blur(kernel)
        elif operator_type == "denoising":
            op = Denoising()
        elif operator_type == "phase_retrieval":
            op = PhaseRetrieval(settings["oversampling"], settings["langevin_steps"])
        else:
            known = ", ".join(OPERATOR_FIELDS)
            raise TaskError(f"{self.source}: 'operator.type' = {operator_type!r} is not one of {known}")
        op.check_size(tuple(shape))
        return op

    def clean_shape(self, measurement_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The clean image's shape for a measurement of ``measurement_shape``, by the operator's
        own rule (operators that change the size do not depend on it for that)."""
        operator_type, settings = self.operator_type, self.operator
        if operator_type == "super_resolution":
            return SuperResolution(settings["factor"], settings["filter"]).clean_shape(measurement_shape)
        if operator_type == "phase_retrieval":
            return PhaseRetrieval(settings["oversampling"]).clean_shape(measurement_shape)
        return tuple(measurement_shape)

    def sampler_for(self, steps: int) -> dict:
        """The sampler settings for ``steps`` prior steps (= NFE): the preset's with the step count
        replaced, and its schedule for that count where it has one (issue 42: a chain of 50 steps
        wants another spacing of its levels than one of 20)."""
        return {**self.sampler, **self.schedules.get(steps, {}), "steps": steps}

    def to_dict(self) -> dict:
        data = {"name": self.name, "description": self.description, "sigma_y": self.sigma_y,
                "operator": dict(self.operator), "sampler": dict(self.sampler)}
        if self.schedules:
            data["schedules"] = {steps: dict(settings) for steps, settings in self.schedules.items()}
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def task_from_dict(data: dict, source: str = "<dict>") -> Task:
    """Validate a preset mapping (as read from YAML) into a :class:`Task`."""
    if not isinstance(data, dict):
        raise TaskError(f"{source}: a task preset must be a YAML mapping")
    unknown = sorted(str(key) for key in set(data) - TOP_FIELDS)
    if unknown:
        raise TaskError(f"{source}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(TOP_FIELDS))})")
    for key in ("name", "sigma_y", "operator"):
        if key not in data:
            raise TaskError(f"{source}: missing key '{key}'")
    sigma_y = data["sigma_y"]
    if isinstance(sigma_y, bool) or not isinstance(sigma_y, (int, float)) or not 0 <= sigma_y <= 2:
        raise TaskError(f"{source}: 'sigma_y' = {sigma_y!r} is out of range (a number in [0, 2], [-1, 1] units)")
    operator = data["operator"]
    if not isinstance(operator, dict) or not isinstance(operator.get("type"), str) \
            or operator["type"] not in OPERATOR_FIELDS:
        got = operator.get("type") if isinstance(operator, dict) else operator
        raise TaskError(f"{source}: 'operator.type' = {got!r} is not one of {', '.join(OPERATOR_FIELDS)}")
    operator_type = operator["type"]
    settings = _validate({k: v for k, v in operator.items() if k != "type"}, OPERATOR_FIELDS[operator_type],
                         "operator", source)
    sampler = _validate_sampler(data.get("sampler") or {}, "sampler", source)
    schedules = _validate_schedules(data.get("schedules") or {}, sampler, source)
    return Task(name=str(data["name"]), description=str(data.get("description", "")),
                sigma_y=float(sigma_y), operator={"type": operator_type, **settings}, sampler=sampler,
                source=source, schedules=schedules)


def _validate_sampler(values: dict, where: str, source: str) -> dict:
    """A whole sampler section, checked and with defaults filled, its levels in order."""
    sampler = _validate(values, SAMPLER_FIELDS, where, source)
    if sampler["sigma_min"] >= sampler["sigma_max"]:
        raise TaskError(f"{source}: '{where}.sigma_min' must be below '{where}.sigma_max'")
    return sampler


def _validate_schedules(schedules: dict, sampler: dict, source: str) -> dict:
    """``schedules``: step counts (other than the sampler's own) to the sampler settings that
    differ at that count; each is checked merged into ``sampler``."""
    if not isinstance(schedules, dict):
        raise TaskError(f"{source}: 'schedules' must be a mapping of step counts, got {type(schedules).__name__}")
    checked = {}
    for steps, settings in schedules.items():
        where = f"schedules.{steps}"
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1 or steps == sampler["steps"]:
            raise TaskError(f"{source}: '{where}': a schedule's key is a number of steps >= 1 other than "
                            f"'sampler.steps' ({sampler['steps']})")
        if not isinstance(settings, dict) or "steps" in settings:
            raise TaskError(f"{source}: '{where}' must be a mapping of sampler settings other than 'steps'")
        merged = _validate_sampler({**sampler, **settings, "steps": steps}, where, source)
        checked[steps] = {key: merged[key] for key in settings}
    return checked


def available_tasks() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_task(name_or_path: str | Path | Task) -> Task:
    """A shipped preset by name (``"sr4x"``) or a YAML file by path; a Task passes through."""
    if isinstance(name_or_path, Task):
        return name_or_path
    candidate = Path(name_or_path)
    if candidate.suffix.lower() in (".yaml", ".yml") or candidate.exists():
        path = candidate
    else:
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise TaskError(f"unknown task {str(name_or_path)!r}; available: {', '.join(available_tasks())}")
    if not path.is_file():
        raise TaskError(f"{path}: no such task file")
    return task_from_dict(read_yaml(path, TaskError), source=str(path))


__all__ = ["Task", "TaskError", "available_tasks", "load_task", "task_from_dict"]
