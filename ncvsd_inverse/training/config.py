"""Training configuration: the recipes (dataclasses) and the presets that fill them from YAML."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from torch import nn

from ..edm import NOISE_INFLATION, SIGMA_MAX, SIGMA_MIN
from ..files import read_yaml
from ..machine import PRECISIONS
from ..networks import UNetConfig, unet_config

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
#: seed of the fixed validation batch (sample grids, the distillation's diagnostic)
VALIDATION_SEED = 12345


@dataclasses.dataclass
class RecipeConfig:
    """What both trainers share: data, optimiser, learning rate, noise levels, EMA, logging.
    Learning rate: EDM2 inverse-sqrt decay after ``lr_ref_steps`` with a linear ramp-up over
    ``rampup_steps``, and over the run's last ``cooldown_steps`` (of ``steps``) a linear decay to
    zero (0: none; :func:`~ncvsd_inverse.training.loop.learning_rate`).
    ``t ~ lognormal(p_mean, p_std)``. ``precision``: the arithmetic of the
    forward passes (``float32``, ``bfloat16`` autocast, or ``auto``: bfloat16 where it is native,
    :func:`~ncvsd_inverse.machine.resolve_precision`); weights, Adam state and backward passes
    stay float32. ``compile``: the training-mode forward passes through ``torch.compile``
    (:func:`~ncvsd_inverse.networks.compile_for_training`: the same arithmetic, fewer passes over
    memory, a compile of minutes when the run starts). A checkpoint every ``checkpoint_every``
    steps; ``keep_checkpoints`` > 0 keeps only that many of the newest (and the ones ``latest`` and
    ``best`` point at), 0 keeps all."""

    batch: int = 32
    patch: int = 32
    lr: float = 1e-3
    lr_ref_steps: int = 1000
    rampup_steps: int = 100
    cooldown_steps: int = 0
    p_mean: float = -0.8
    p_std: float = 1.6
    ema_std: float = 0.05
    grad_clip: float = 0.0
    steps: int = 1000
    checkpoint_every: int = 250
    keep_checkpoints: int = 0
    log_every: int = 50
    seed: int = 0
    precision: str = "float32"
    compile: bool = False


@dataclasses.dataclass
class TeacherConfig(RecipeConfig):
    """Teacher training recipe (DESIGN 3.1)."""

    network: UNetConfig = dataclasses.field(default_factory=UNetConfig)


@dataclasses.dataclass
class DistillConfig(RecipeConfig):
    """NCVSD recipe (DESIGN 3.4). ``lr`` is the fake score's; the generator and discriminator
    use ``lr * g_lr_scale`` / ``lr * d_lr_scale``. ``fake_steps``: fake-score updates per
    generator update. ``logvar_on_t``: the generator loss's log-variance is ``u(sigma) + v(t)``
    with ``v`` a training-only head (lr ``lr``) instead of ``u(sigma)`` alone.
    ``gan_scale = 0`` turns the GAN term off. ``condition``: how the generator sees ``(y, sigma)``,
    ``"encoder"`` (DESIGN 3.3's separate condition encoder) or ``"concat"`` (joined at the input
    layer, see :class:`~ncvsd_inverse.networks.InputConcatUNet`).
    ``val_every``: steps between runs of the diagnostic (DESIGN 3.6b); the run also logs then.
    ``mean_scale > 0`` adds the posterior-mean term (:func:`posterior_mean_bias`, DESIGN 3.4,
    not in the paper): the generator's problems come in pairs that share ``y``, and the
    pair's two samples estimate ``||E_z G(y, sigma, z) - D(y, sigma)||^2``."""

    # the generator's architecture (saved with it: the model loader reads these two)
    gamma: float = NOISE_INFLATION
    condition: str = "encoder"
    # optimisation, beyond the shared recipe
    g_lr_scale: float = 0.1
    d_lr_scale: float = 0.1
    fake_steps: int = 1
    grad_clip: float = 1.0
    # the problems: sigma on a Karras grid
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    sigma_levels: int = 1000
    sigma_rho: float = 7.0
    # the generator's loss terms
    logvar_on_t: bool = False
    gan_scale: float = 0.0
    gan_warmup_steps: int = 0
    mean_scale: float = 0.0
    # validation: the diagnostic (diagnostics.py) on a fixed batch, which picks best.*
    val_every: int = 250
    val_sigmas: tuple[float, ...] = (0.2, 0.5)
    val_images: int = 8
    val_patch: int = 64


#: The range each numeric setting must lie in (both ends included); checked by :func:`check_ranges`.
RANGES = {
    "batch": (1, 65536), "patch": (8, 4096), "lr": (1e-12, 10.0), "lr_ref_steps": (1, 10**9),
    "rampup_steps": (0, 10**9), "cooldown_steps": (0, 10**9), "p_mean": (-10.0, 10.0), "p_std": (1e-6, 10.0),
    "ema_std": (0.0, 1.0), "grad_clip": (0.0, 1e9), "steps": (0, 10**9), "checkpoint_every": (1, 10**9),
    "keep_checkpoints": (0, 10**9), "log_every": (1, 10**9),
    "seed": (0, 2**63 - 1), "gamma": (0.0, 10.0), "g_lr_scale": (1e-9, 1e3), "d_lr_scale": (1e-9, 1e3),
    "fake_steps": (1, 1000), "sigma_min": (1e-9, 1e3), "sigma_max": (1e-9, 1e6), "sigma_levels": (2, 10**7),
    "sigma_rho": (0.1, 100.0), "gan_scale": (0.0, 1e6), "gan_warmup_steps": (0, 10**9), "mean_scale": (0.0, 1e6),
    "val_every": (1, 10**9), "val_images": (1, 4096), "val_patch": (8, 4096),
}


def check_ranges(config, source: str) -> None:
    """Each field of a recipe has its declared type (int, float, bool, str, or a tuple of floats)
    and lies in :data:`RANGES`; raises ``ValueError`` naming the first that does not."""
    for field in dataclasses.fields(config):
        value, default = getattr(config, field.name), field.default
        if field.name == "network":
            continue
        if field.name == "val_sigmas":
            if not value or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e6
                                    for v in value):
                raise ValueError(f"{source}: val_sigmas must be a non-empty list of positive numbers, got {value!r}")
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ValueError(f"{source}: {field.name} must be {type(default).__name__}, got {value!r}")
        low, high = RANGES.get(field.name, (None, None))
        if low is not None and not low <= value <= high:
            raise ValueError(f"{source}: {field.name} must be between {low} and {high}, got {value!r}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"{source}: precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}")
    if isinstance(config, DistillConfig):
        if config.condition not in ("encoder", "concat"):
            raise ValueError(f"{source}: condition must be 'encoder' or 'concat', got {config.condition!r}")
        if config.sigma_min >= config.sigma_max:
            raise ValueError(f"{source}: sigma_min must be below sigma_max")


def _from_dict(cls, data: dict, source: str):
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a {cls.__name__} section must be a mapping, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, data)) - names)
    if unknown:
        raise ValueError(f"{source}: unknown key '{unknown[0]}' for {cls.__name__}")
    data = dict(data)
    if "network" in data:
        data["network"] = _from_dict(UNetConfig, data["network"], source)
    if "val_sigmas" in data:
        value = data["val_sigmas"]
        data["val_sigmas"] = tuple(value) if isinstance(value, (list, tuple)) else value
    if cls is UNetConfig:
        return cls(**data)
    config = cls(**data)
    check_ranges(config, source)
    return config


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """The YAML file of a training preset: a packaged name (``cpu-small``) or a path
    (relative to ``relative_to``'s folder when given, as for a preset's ``base``)."""
    path = Path(name_or_path)
    if relative_to is not None and not path.is_absolute():
        path = relative_to.parent / path
    if path.is_file():
        return path
    packaged = PRESET_DIR / f"{name_or_path}.yaml"
    if packaged.is_file():
        return packaged
    raise ValueError(f"unknown training preset {str(name_or_path)!r}; "
                     f"available: {', '.join(available_presets())}")


def merge_settings(base: dict, overrides: dict) -> dict:
    """``base`` updated by ``overrides``, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = merge_settings(merged[key], value)
        merged[key] = value
    return merged


def read_preset(name_or_path: str | Path, relative_to: Path | None = None, seen: tuple[Path, ...] = ()) -> dict:
    """A training preset as a plain mapping, its ``base`` chain resolved: a preset that says
    ``base: cpu-small`` holds only what differs from ``cpu-small``."""
    path = preset_path(name_or_path, relative_to).resolve()
    if path in seen:
        raise ValueError(f"{path}: 'base' loops back to itself")
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a training preset must be a YAML mapping")
    unknown = sorted(set(data) - {"base", "teacher", "distill", "description"})
    if unknown:
        raise ValueError(f"{path}: unknown key '{unknown[0]}'")
    for section in ("teacher", "distill"):
        if not isinstance(data.get(section, {}), dict):
            raise ValueError(f"{path}: '{section}' must be a mapping")
    if "base" not in data:
        return data
    base = read_preset(data.pop("base"), path, (*seen, path))
    return merge_settings({k: v for k, v in base.items() if k != "description"}, data)


def load_preset(name_or_path: str | Path) -> tuple[TeacherConfig, DistillConfig]:
    """A training preset (``tiny``, ``cpu-small``, ``cpu-small-finetune``, ``cpu-small-mean4``,
    ``ffhq256-xs`` or a YAML path; see :func:`read_preset` for ``base``)."""
    data = read_preset(name_or_path)
    source = str(preset_path(name_or_path))
    return (_from_dict(TeacherConfig, data.get("teacher", {}), source),
            _from_dict(DistillConfig, data.get("distill", {}), source))


def to_plain(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def network_description(module: nn.Module) -> dict:
    """``{"network": UNetConfig as a dict}`` when ``module`` is built on our UNet; for a generator
    on a foreign network, ``{"foreign": its prior's description}`` (the architecture and its own
    config, :func:`~ncvsd_inverse.priors.prior_from_description`); else ``{}``."""
    cfg = unet_config(module)
    if cfg is not None:
        return {"network": to_plain(cfg)}
    foreign = getattr(getattr(module, "net", module), "description", None)
    return {} if foreign is None else {"foreign": foreign}


# ----------------------------------------------------------------------------------------------
