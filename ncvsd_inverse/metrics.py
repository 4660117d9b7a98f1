"""Image-quality metrics on ``(N, C, H, W)`` tensors in [-1, 1] (data range 2).

PSNR and SSIM reproduce scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` (7x7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03,
data_range = 2, mean over channels) computed in torch. LPIPS is the ``lpips`` package's v0.1
model (input in [-1, 1], its scaling layer, spatial average) with weights found offline: those
``ncvsd-weights lpips`` converts from the package index, or torchvision's backbone file. When
neither exists it returns ``None``: a random backbone is never scored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ncvsd_inverse.lpips_weights import NETS, cached_weights_path, lpips_model

logger = logging.getLogger(__name__)

DATA_RANGE = 2.0
BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
#: the smallest height and width each LPIPS backbone accepts (its pooling needs at least one pixel)
LPIPS_MIN_SIZE = {"alex": 31, "vgg": 16, "squeeze": 17}


def psnr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, ``(N,)``; images in [-1, 1] (``reference`` is
    moved to ``estimate``'s device)."""
    mse = ((estimate.double() - reference.to(estimate.device).double()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(DATA_RANGE**2 / mse)).float()


def ssim(estimate: torch.Tensor, reference: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Structural similarity per image, ``(N,)``; scikit-image's defaults with data range 2."""
    if min(estimate.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window}, got {tuple(estimate.shape[-2:])}")
    x, y = estimate.double(), reference.to(estimate.device).double()
    n_pixels = window * window
    cov_norm = n_pixels / (n_pixels - 1)

    def mean_filter(t: torch.Tensor) -> torch.Tensor:
        # 'valid' window averages: exactly scikit-image's result after it crops (window-1)/2 pixels
        return F.avg_pool2d(t.flatten(0, 1)[:, None], window, stride=1)

    mu_x, mu_y = mean_filter(x), mean_filter(y)
    var_x = cov_norm * (mean_filter(x * x) - mu_x**2)
    var_y = cov_norm * (mean_filter(y * y) - mu_y**2)
    cov_xy = cov_norm * (mean_filter(x * y) - mu_x * mu_y)
    c1, c2 = (0.01 * DATA_RANGE) ** 2, (0.03 * DATA_RANGE) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.reshape(x.shape[0], -1).mean(1).float()


_lpips_models: dict[tuple, object] = {}
_lpips_unavailable_logged: set[str] = set()


def lpips_weights_path(net: str = "alex", weights: str | Path | None = None) -> Path | None:
    """The LPIPS weights file for ``net``, or None when none is found.

    ``weights`` if given; otherwise, in order, the converted v0.1 weights of
    ``ncvsd-weights lpips`` (``$NCVSD_CACHE/lpips/<net>.safetensors``) and torchvision's
    backbone file in ``$TORCH_HOME/hub/checkpoints/``.
    """
    if weights is not None:
        return Path(weights)
    candidates = [torch_hub_backbone_path(net)]
    if net in NETS:
        candidates.insert(0, cached_weights_path(net))
    return next((path for path in candidates if path.is_file()), None)


def torch_hub_backbone_path(net: str) -> Path:
    """``$TORCH_HOME/hub/checkpoints/<torchvision file name>`` for ``net``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]


def _lpips_from_converted(path: Path, net: str):
    """``lpips.LPIPS`` with backbone and heads from an ``ncvsd-weights lpips`` safetensors file."""
    model = lpips_model(net)
    state = load_file(str(path))
    expected = {name for name in model.state_dict() if name.startswith(("net.", "lin"))}
    expected -= {name for name in expected if name.startswith("lins.")}  # aliases of lin0..lin4
    if set(state) != expected:
        raise ValueError(f"{path}: not an LPIPS ({net}) weights file (tensor names differ)")
    model.load_state_dict(state, strict=False)
    return model


def _lpips_from_torchvision(path: Path, net: str):
    """``lpips.LPIPS`` with the package's v0.1 heads and a torchvision backbone file (``weights_only``)."""
    import lpips as lpips_package

    model = lpips_package.LPIPS(net=net, pnet_rand=True, verbose=False)
    backbone = torch.load(path, map_location="cpu", weights_only=True)
    # lpips splits torchvision's `features` into slices that keep the original indices
    mapped = {}
    for name in model.net.state_dict():
        _, index, param = name.split(".", 2)
        mapped[name] = backbone[f"features.{index}.{param}"]
    model.net.load_state_dict(mapped)
    return model


def load_lpips(net: str = "alex", weights: str | Path | None = None, device: str | torch.device = "cpu"):
    """The ``lpips.LPIPS`` v0.1 model with offline weights, or ``None`` when none are found.

    Never downloads and never scores with a random backbone. Weights come from
    :func:`lpips_weights_path`: a ``.safetensors`` file written by ``ncvsd-weights lpips``
    (backbone and heads) or torchvision's backbone file (loaded ``weights_only``, heads from
    the ``lpips`` package). If none is found, logs once how to get them and returns ``None``.
    """
    if net not in BACKBONE_FILES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose one of {sorted(BACKBONE_FILES)}")
    path = lpips_weights_path(net, weights)
    if path is None or not path.is_file():
        message = lpips_status(net, weights)
        if message not in _lpips_unavailable_logged:
            _lpips_unavailable_logged.add(message)
            logger.warning(message)
        return None
    key = (net, str(path.resolve()), str(device))
    if key not in _lpips_models:
        loader = _lpips_from_converted if path.suffix == ".safetensors" else _lpips_from_torchvision
        _lpips_models[key] = loader(path, net).eval().to(device)
    return _lpips_models[key]


def lpips(estimate: torch.Tensor, reference: torch.Tensor, net: str = "alex",
          weights: str | Path | None = None) -> torch.Tensor | None:
    """LPIPS distance per image, ``(N,)``, or ``None`` when the backbone weights are absent.

    Images in [-1, 1] (LPIPS's own convention); gray images are replicated to 3 channels.
    Raises ``ValueError`` for images smaller than ``LPIPS_MIN_SIZE[net]`` (31 for AlexNet).
    """
    if net in LPIPS_MIN_SIZE and min(estimate.shape[-2:]) < LPIPS_MIN_SIZE[net]:
        raise ValueError(f"LPIPS ({net}) needs images of at least {LPIPS_MIN_SIZE[net]}x{LPIPS_MIN_SIZE[net]}, "
                         f"got {tuple(estimate.shape[-2:])}")
    model = load_lpips(net, weights, estimate.device)
    if model is None:
        return None
    if estimate.shape[1] == 1:
        estimate, reference = estimate.expand(-1, 3, -1, -1), reference.expand(-1, 3, -1, -1)
    with torch.no_grad():
        return model(estimate.float(), reference.float()).flatten()


def mean_lpips(estimate: torch.Tensor, reference: torch.Tensor, net: str = "alex",
               weights: str | Path | None = None) -> float | None:
    """The mean LPIPS over a batch (estimate clamped to [-1, 1]), or None when unavailable
    (no weights, or images smaller than the backbone accepts)."""
    if min(estimate.shape[-2:]) < LPIPS_MIN_SIZE[net]:
        return None
    scores = lpips(estimate.clamp(-1, 1), reference, net, weights)
    return None if scores is None else float(scores.mean())


def image_scores(estimate: torch.Tensor, reference: torch.Tensor, lpips_weights: str | Path | None = None) -> dict:
    """``{"psnr", "ssim", "lpips"}`` of ``estimate`` against ``reference`` ``(N, C, H, W)`` in
    [-1, 1], each the mean over the batch; the estimate is clamped to [-1, 1]; LPIPS (AlexNet) is
    None where unavailable (see :func:`mean_lpips`)."""
    estimate = estimate.clamp(-1, 1)
    return {"psnr": float(psnr(estimate, reference).mean()), "ssim": float(ssim(estimate, reference).mean()),
            "lpips": mean_lpips(estimate, reference, weights=lpips_weights)}


def lpips_status(net: str = "alex", weights: str | Path | None = None) -> str:
    """One line for reports: which LPIPS weights are used, or why LPIPS is unavailable."""
    path = lpips_weights_path(net, weights)
    if path is not None and path.is_file():
        return f"LPIPS v0.1 ({net}): {path}"
    if weights is not None:
        return f"LPIPS unavailable: {weights} not found"
    fetch = f"run `ncvsd-weights lpips --net {net}`" if net in NETS else "copy it there"
    return (f"LPIPS unavailable: no {net} weights in {cached_weights_path(net) if net in NETS else '-'} "
            f"or {torch_hub_backbone_path(net)}; {fetch}")


__all__ = ["psnr", "ssim", "lpips", "mean_lpips", "load_lpips", "lpips_status", "lpips_weights_path",
           "torch_hub_backbone_path"]
