"""Prior models from anywhere as one denoiser ``D(x, sigma)`` in this project's units.

``load_prior(spec)`` returns a frozen ``torch.nn.Module`` that maps a noisy image ``x`` in
[-1, 1] (plus noise) at the EDM noise level ``sigma`` (a float or ``(N,)``, in [-1, 1] units) to
its clean estimate ``E[x0 | x]`` (design notes, "Foreign priors"), with ``.sha256`` (a digest
that results name the model by) and ``.img_channels``. ``spec`` is one of:

- an ``ncvsd-train`` checkpoint or run folder (this project's teacher);
- ``"diffusers:PATH"``: a diffusers ``UNet2DModel`` (``config.json`` + safetensors weights)
  with its scheduler config: a pipeline folder with ``unet/`` and ``scheduler/``, or a UNet
  folder with ``scheduler_config.json`` beside it, or ``"diffusers:UNET_DIR?scheduler=DIR"``;
  variance-preserving ``DDPMScheduler`` / ``DDIMScheduler`` models (epsilon, v_prediction or
  sample prediction) and variance-exploding ``ScoreSdeVeScheduler`` models;
- ``"deepinv:NAME"`` or ``"deepinv:NAME:WEIGHTS"``: a deepinv denoiser built by deepinv's own
  class (``drunet``, ``diffunet-ffhq``, ``diffunet-imagenet``), ``WEIGHTS`` a local
  ``.safetensors`` / ``.pt`` / ``.pth`` file or ``download`` (needs internet);
- a ``deepinv.models.Denoiser`` instance, or any callable ``D(x, sigma)`` in our units.

Each unit conversion is one function below, with its equation. No pickle: ``.pt`` / ``.pth``
files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .models import weights_sha256
from .networks import pad_to_multiple

Tensor = torch.Tensor


class PriorError(ValueError):
    """A prior spec that cannot be loaded; the message is one line and says what would work."""


# --- the unit conversions (design notes, "Foreign priors") ----------------------------------

def vp_sigmas(alphas_cumprod: Tensor) -> Tensor:
    """The VE noise level of each VP timestep: ``x_t / sqrt(abar_t) = x0 + sigma_t eps`` with
    ``sigma_t = sqrt((1 - abar_t) / abar_t)``; increasing in ``t``."""
    alphas_cumprod = alphas_cumprod.double()
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


def vp_timestep(sigma: Tensor, grid: Tensor) -> Tensor:
    """The continuous timestep whose level is ``sigma``: ``log sigma_t`` interpolated linearly
    between the integer timesteps of ``grid`` (:func:`vp_sigmas`). Below the grid's first level
    ``t = 0``; above its last, the last timestep (the network was trained on neither)."""
    log_grid, log_sigma = grid.double().log().to(sigma.device), sigma.double().clamp_min(1e-30).log()
    upper = torch.searchsorted(log_grid, log_sigma).clamp(1, len(log_grid) - 1)
    low, high = log_grid[upper - 1], log_grid[upper]
    t = (upper - 1) + (log_sigma - low) / (high - low)
    return t.clamp(0, len(log_grid) - 1).float()


def vp_input(x: Tensor, sigma: Tensor) -> Tensor:
    """The VP model's input for our ``x = x0 + sigma eps``: ``x_t = sqrt(abar) x`` with
    ``abar = 1 / (1 + sigma^2)``, i.e. ``x / sqrt(1 + sigma^2)``."""
    return x / (1 + sigma**2).sqrt()


def vp_clean_estimate(output: Tensor, x: Tensor, sigma: Tensor, prediction_type: str) -> Tensor:
    """``x0`` from a VP model's output at our ``(x, sigma)`` (``abar = 1 / (1 + sigma^2)``):
    epsilon: ``x0 = x - sigma eps_hat``; v_prediction: ``x0 = sqrt(abar) x_t - sqrt(1 - abar) v_hat``
    with ``x_t = sqrt(abar) x``; sample: ``x0`` = the output."""
    if prediction_type == "epsilon":
        return x - sigma * output
    if prediction_type == "v_prediction":
        abar = 1 / (1 + sigma**2)
        return abar * x - (1 - abar).sqrt() * output
    if prediction_type == "sample":
        return output
    raise PriorError(f"unsupported prediction_type {prediction_type!r} (epsilon, v_prediction or sample)")


def ve_clean_estimate(score: Tensor, x: Tensor, sigma: Tensor) -> Tensor:
    """Tweedie's formula for a score model: ``x0 = x + sigma^2 score``."""
    return x + sigma**2 * score


def unit_range_denoiser(denoise: Callable[[Tensor, Tensor], Tensor], x: Tensor, sigma: Tensor) -> Tensor:
    """Our ``D(x, sigma)`` from a denoiser ``d`` of [0, 1] images at [0, 1]-unit levels:
    ``2 d((x + 1) / 2, sigma / 2) - 1``."""
    return 2 * denoise((x + 1) / 2, sigma / 2) - 1


# --- the adapters --------------------------------------------------------------------------

def _levels(sigma: float | Tensor, x: Tensor) -> Tensor:
    """``sigma`` as ``(N, 1, 1, 1)`` float32 on ``x``'s device."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).flatten()
    return sigma.expand(x.shape[0]).reshape(-1, 1, 1, 1)


class Prior(nn.Module):
    """Base of the adapters: frozen, in eval mode, with ``sha256``, ``img_channels``, ``source``
    and ``description`` (how to rebuild the network: :func:`prior_from_description`; None for a
    callable or a deepinv instance)."""

    description: dict | None = None
    size_multiple: int = 1  # the network's input must be a multiple of this (reflect-padded, cropped back)

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """``E[x0 | x]``: x (N, C, H, W) in [-1, 1] plus noise, any H, W; sigma float or (N,)."""
        padded, (height, width) = pad_to_multiple(x, self.size_multiple)
        return self.denoise(padded, _levels(sigma, x))[..., :height, :width]

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        """The adapter's conversion; ``sigma`` is ``(N, 1, 1, 1)``."""
        raise NotImplementedError

    def finish(self, source: str, img_channels: int | None, device) -> "Prior":
        self.source, self.img_channels = source, img_channels
        self.requires_grad_(False).eval().to(device if device is not None else "cpu")
        self.sha256 = weights_sha256(self)
        return self


class VPDenoiser(Prior):
    """A variance-preserving model ``model(x_t, t)`` (diffusers ``UNet2DModel``, guided
    diffusion) as ``D(x, sigma)``: :func:`vp_input`, :func:`vp_timestep`, :func:`vp_clean_estimate`."""

    def __init__(self, model: nn.Module, alphas_cumprod: Tensor, prediction_type: str):
        super().__init__()
        vp_clean_estimate(torch.zeros(1), torch.zeros(1), torch.ones(1), prediction_type)  # checks the type
        self.model, self.prediction_type = model, prediction_type
        self.register_buffer("sigma_grid", vp_sigmas(alphas_cumprod), persistent=False)  # float64

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        t = vp_timestep(sigma.flatten(), self.sigma_grid)
        output = self.model(vp_input(x, sigma), t)
        output = getattr(output, "sample", output)
        return vp_clean_estimate(output[:, : x.shape[1]].float(), x, sigma, self.prediction_type)


class VEDenoiser(Prior):
    """A variance-exploding score model ``score(z, s)`` (diffusers ``ScoreSdeVeScheduler``
    models: images in [0, 1], which the pipeline clamps its samples to) as ``D(x, sigma)``:
    :func:`unit_range_denoiser` of :func:`ve_clean_estimate`. The network is told at least its
    smallest trained level ``sigma_min``."""

    def __init__(self, model: nn.Module, sigma_min: float):
        super().__init__()
        self.model, self.sigma_min = model, sigma_min

    def _unit_range(self, z: Tensor, s: Tensor) -> Tensor:
        score = self.model(z, s.flatten().clamp_min(self.sigma_min))
        return ve_clean_estimate(getattr(score, "sample", score).float(), z, s)

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        return unit_range_denoiser(self._unit_range, x, sigma)


class DeepinvPrior(Prior):
    """A deepinv denoiser ``d(z, s)`` ([0, 1] images, [0, 1]-unit levels) as ``D(x, sigma)``
    (:func:`unit_range_denoiser`)."""

    def __init__(self, denoiser: nn.Module):
        super().__init__()
        self.denoiser = denoiser

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        return unit_range_denoiser(lambda z, s: self.denoiser(z, s.flatten()), x, sigma)


class CallablePrior(Prior):
    """Any callable ``D(x, sigma)`` already in our units. Its digest is that of its weights when
    it is a module, else of its qualified name (a function has no weights to tell versions by)."""

    def __init__(self, function: Callable[[Tensor, Tensor], Tensor]):
        super().__init__()
        self.function = function

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        return self.function(x, sigma.flatten())


# --- loading -------------------------------------------------------------------------------

def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Weights from ``.safetensors``, or ``.pt`` / ``.pth`` / ``.bin`` through ``torch.load(weights_only=True)``."""
    if not path.is_file():
        raise PriorError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        if path.suffix in (".pt", ".pth", ".bin"):
            state = torch.load(path, map_location="cpu", weights_only=True)
            return state.get("state_dict", state) if isinstance(state, dict) else state
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's input
        raise PriorError(f"{path}: cannot read its weights ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''})") from None
    raise PriorError(f"{path}: weights must be .safetensors, or .pt / .pth / .bin (read without pickle)")


def load_weights(module: nn.Module, state: dict[str, Tensor], source: str) -> nn.Module:
    """``module`` with ``state`` loaded strictly; one line when they do not fit."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise PriorError(f"{source}: the weights do not fit the model ({str(error).splitlines()[0]})") from None
    return module


def _diffusers():
    try:
        import diffusers
    except ImportError:
        raise PriorError('a diffusers: prior needs the diffusers extra: pip install "ncvsd-inverse[diffusers]"') \
            from None
    return diffusers


def _diffusers_folders(path_text: str) -> tuple[Path, Path]:
    """``(unet_dir, scheduler_dir)`` of a ``diffusers:`` spec."""
    text, _, query = path_text.partition("?scheduler=")
    folder = Path(text).expanduser()
    if not folder.exists():
        hint = (" (a hub id: download it where there is internet, e.g. with huggingface_hub.snapshot_download, "
                "and pass the local folder: diffusers:PATH)") if "/" in text and not text.startswith((".", "/")) else ""
        raise PriorError(f"diffusers:{path_text}: no such folder{hint}")
    unet_dir = folder / "unet" if (folder / "unet" / "config.json").is_file() else folder
    if not (unet_dir / "config.json").is_file():
        raise PriorError(f"diffusers:{path_text}: no UNet here (need unet/config.json or config.json)")
    if query:
        scheduler_dir = Path(query).expanduser()
    elif (folder / "scheduler" / "scheduler_config.json").is_file():
        scheduler_dir = folder / "scheduler"
    else:
        scheduler_dir = unet_dir
    if not (scheduler_dir / "scheduler_config.json").is_file():
        raise PriorError(f"diffusers:{path_text}: no scheduler config (need scheduler/scheduler_config.json, "
                         "scheduler_config.json beside the UNet, or ?scheduler=DIR)")
    return unet_dir, scheduler_dir


def load_diffusers_prior(path_text: str, device=None) -> Prior:
    """A diffusers ``UNet2DModel`` with its scheduler as ``D(x, sigma)`` (see the module doc)."""
    _diffusers()  # one line naming the extra when it is missing
    unet_dir, scheduler_dir = _diffusers_folders(path_text)
    source = f"diffusers:{path_text}"
    config = json.loads((unet_dir / "config.json").read_text())
    if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise PriorError(f"{source}: a {config['_class_name']}; only UNet2DModel (pixel-space) models are supported")
    weights = sorted(unet_dir.glob("*.safetensors")) or sorted(unet_dir.glob("*.bin"))
    if not weights:
        raise PriorError(f"{source}: no weights in {unet_dir} (diffusion_pytorch_model.safetensors)")
    scheduler_config = json.loads((scheduler_dir / "scheduler_config.json").read_text())
    prior = diffusers_prior(config, scheduler_config, source)
    state = {}
    for file in weights:
        state.update(read_state_dict(file))
    load_weights(prior.model, state, source)
    return prior.finish(source, config.get("in_channels", 3), device)


def diffusers_prior(unet_config: dict, scheduler_config: dict, source: str) -> Prior:
    """The adapter for a ``UNet2DModel`` of ``unet_config`` (random weights) and its scheduler:
    :class:`VPDenoiser` for ``DDPMScheduler`` / ``DDIMScheduler``, :class:`VEDenoiser` for
    ``ScoreSdeVeScheduler``. ``.description`` holds both configs, so that a distilled generator
    can rebuild the network without the original folder (:func:`prior_from_description`)."""
    diffusers = _diffusers()
    try:
        unet = diffusers.UNet2DModel.from_config(unet_config)
    except Exception as error:  # noqa: BLE001 - a config diffusers refuses is the user's input
        raise PriorError(f"{source}: cannot build the UNet from its config ({str(error).splitlines()[0]})") from None
    kind = scheduler_config.get("_class_name", "")
    if kind in ("DDPMScheduler", "DDIMScheduler"):
        scheduler = getattr(diffusers, kind).from_config(scheduler_config)
        prior = VPDenoiser(unet, scheduler.alphas_cumprod, scheduler.config.get("prediction_type", "epsilon"))
    elif kind == "ScoreSdeVeScheduler":
        prior = VEDenoiser(unet, float(scheduler_config.get("sigma_min", 0.01)))
    else:
        raise PriorError(f"{source}: unsupported scheduler {kind or 'without _class_name'} "
                         "(DDPMScheduler, DDIMScheduler or ScoreSdeVeScheduler)")
    prior.description = {"kind": "diffusers", "unet": dict(unet_config), "scheduler": dict(scheduler_config)}
    prior.size_multiple = 2 ** (len(unet.config.block_out_channels) - 1)
    return prior


def prior_from_description(description: dict, device=None) -> Prior:
    """A foreign prior's network rebuilt, with random weights, from its ``.description`` (what a
    distilled generator's checkpoint records; the weights come from the checkpoint)."""
    kind = description.get("kind")
    if kind == "diffusers":
        prior = diffusers_prior(description["unet"], description["scheduler"], "checkpoint")
        return prior.finish("checkpoint", description["unet"].get("in_channels", 3), device)
    if kind == "deepinv":
        return deepinv_prior(description["name"], None).finish("checkpoint", 3, device)
    raise PriorError(f"cannot rebuild a prior of kind {kind!r} (diffusers or deepinv)")


#: deepinv's pretrained denoisers by name: the class, its keyword arguments, and the weights file
#: deepinv downloads for ``download`` (its ``get_weights_url(model_name, file_name)``).
DEEPINV_MODELS = {
    "drunet": ("DRUNet", {"in_channels": 3, "out_channels": 3}, ("drunet", "drunet_deepinv_color_finetune_22k.pth")),
    "diffunet-ffhq": ("DiffUNet", {"large_model": False}, ("diffunet", "diffusion_ffhq_10m.pt")),
    "diffunet-imagenet": ("DiffUNet", {"large_model": True}, ("diffunet", "diffusion_openai.pt")),
}


def build_deepinv_denoiser(name: str, weights: str | None) -> nn.Module:
    """deepinv's denoiser ``name`` (:data:`DEEPINV_MODELS`) through its own class: random weights
    (``weights`` None), a local file, or ``download`` (deepinv's own download: needs internet)."""
    import deepinv

    if name not in DEEPINV_MODELS:
        raise PriorError(f"deepinv:{name}: unknown model (known: {', '.join(DEEPINV_MODELS)})")
    class_name, kwargs, (folder, file_name) = DEEPINV_MODELS[name]
    model_class = getattr(deepinv.models, class_name)
    if weights == "download":
        url = deepinv.models.utils.get_weights_url(model_name=folder, file_name=file_name)
        try:
            return model_class(**kwargs, pretrained="download")
        except Exception as error:  # noqa: BLE001 - no network, a proxy, a broken download
            raise PriorError(f"deepinv:{name}:download failed ({type(error).__name__}): without internet, fetch "
                             f"{url} elsewhere and pass deepinv:{name}:/path/to/{file_name}") from None
    model = model_class(**kwargs, pretrained=None)
    if weights is not None:
        load_weights(model, read_state_dict(Path(weights).expanduser()), f"deepinv:{name}:{weights}")
    return model


def load_deepinv_prior(text: str, device=None) -> Prior:
    """``deepinv:NAME[:WEIGHTS]`` (WEIGHTS: a file, ``download``, or ``random`` for tests)."""
    name, _, weights = text.partition(":")
    if not weights:
        raise PriorError(f"deepinv:{name}: say where its weights are: deepinv:{name}:/path/to/weights.pth "
                         f"(or deepinv:{name}:download where there is internet)")
    prior = deepinv_prior(name, None if weights == "random" else weights)
    return prior.finish(f"deepinv:{text}", 3, device)


def deepinv_prior(name: str, weights: str | None) -> Prior:
    """:class:`DeepinvPrior` of deepinv's model ``name`` (:func:`build_deepinv_denoiser`), with its
    description and input size multiple (DRUNet: 8; DiffUNet pads its input itself)."""
    prior = DeepinvPrior(build_deepinv_denoiser(name, weights))
    prior.description = {"kind": "deepinv", "name": name}
    prior.size_multiple = 8 if name == "drunet" else 1
    return prior


def load_prior(spec, device=None) -> nn.Module:
    """The prior ``D(x, sigma)`` named by ``spec`` (see the module doc): a frozen module in our
    units (x: (N, C, H, W) in [-1, 1] plus noise, sigma: float or (N,), EDM levels) with
    ``.sha256`` and ``.img_channels``. Raises :class:`PriorError` (one line) for bad input.
    ``spec=None``: the shipped teacher."""
    from .api import load_model, resolve_device

    device = resolve_device(device)
    if isinstance(spec, nn.Module) and hasattr(spec, "sha256"):
        return spec.to(device)
    if isinstance(spec, str) and spec.startswith("diffusers:"):
        return load_diffusers_prior(spec[len("diffusers:"):], device)
    if isinstance(spec, str) and spec.startswith("deepinv:"):
        return load_deepinv_prior(spec[len("deepinv:"):], device)
    if spec is None or isinstance(spec, (str, Path)):
        from .checkpoints import CheckpointError
        from .networks import unet_config

        try:
            teacher = load_model(spec, "teacher", device)
        except CheckpointError as error:
            raise PriorError(f"{error} (a prior is an ncvsd-train checkpoint or run folder, diffusers:PATH or "
                             "deepinv:NAME:WEIGHTS)") from None
        teacher.sha256 = weights_sha256(teacher)
        teacher.img_channels = unet_config(teacher).img_channels
        return teacher
    try:
        import deepinv

        if isinstance(spec, deepinv.models.Denoiser):
            return DeepinvPrior(spec).finish(f"deepinv:{type(spec).__name__}", None, device)
    except ImportError:
        pass
    if callable(spec):
        prior = CallablePrior(spec).finish(f"callable:{getattr(spec, '__qualname__', type(spec).__name__)}",
                                           None, device)
        if not any(True for _ in prior.state_dict()):
            prior.sha256 = hashlib.sha256(prior.source.encode()).hexdigest()
        return prior
    raise PriorError(f"unknown prior {spec!r}: an ncvsd-train checkpoint or run folder, diffusers:PATH, "
                     "deepinv:NAME:WEIGHTS, a deepinv Denoiser or a callable D(x, sigma)")


__all__ = ["PriorError", "load_prior", "unit_range_denoiser", "ve_clean_estimate", "vp_clean_estimate",
           "vp_input", "vp_sigmas", "vp_timestep"]
