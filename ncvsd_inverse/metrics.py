"""Image-quality metrics on ``(N, C, H, W)`` tensors in [-1, 1] (data range 2).

PSNR and SSIM reproduce scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity`` (7x7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03,
data_range = 2, mean over channels) computed in torch. LPIPS uses the ``lpips`` package with
torchvision backbone weights found offline; when they are absent it returns ``None``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

DATA_RANGE = 2.0
BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


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


def lpips_weights_path(net: str = "alex", weights: str | Path | None = None) -> Path:
    """Where the torchvision backbone for ``net`` is looked for: ``weights`` or
    ``$TORCH_HOME/hub/checkpoints/<torchvision file name>``."""
    if weights is not None:
        return Path(weights)
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]


def load_lpips(net: str = "alex", weights: str | Path | None = None, device: str | torch.device = "cpu"):
    """The ``lpips.LPIPS`` model with its backbone loaded from a local file, or ``None``.

    Never downloads: the model is built with an untrained backbone and the backbone weights are
    then loaded (``weights_only``) from :func:`lpips_weights_path`. If that file is missing, logs
    once how to provide it and returns ``None``.
    """
    if net not in BACKBONE_FILES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose one of {sorted(BACKBONE_FILES)}")
    path = lpips_weights_path(net, weights)
    key = (net, str(path), str(device))
    if key in _lpips_models:
        return _lpips_models[key]
    if not path.is_file():
        if str(path) not in _lpips_unavailable_logged:
            _lpips_unavailable_logged.add(str(path))
            logger.warning("LPIPS unavailable: backbone weights %s not found; copy torchvision's %s "
                           "there (or set TORCH_HOME, or pass the file's path)", path, BACKBONE_FILES[net])
        return None
    import lpips as lpips_package

    model = lpips_package.LPIPS(net=net, pnet_rand=True, verbose=False)
    backbone = torch.load(path, map_location="cpu", weights_only=True)
    # lpips splits torchvision's `features` into slices that keep the original indices
    mapped = {}
    for name in model.net.state_dict():
        _, index, param = name.split(".", 2)
        mapped[name] = backbone[f"features.{index}.{param}"]
    model.net.load_state_dict(mapped)
    model = model.eval().to(device)
    _lpips_models[key] = model
    return model


def lpips(estimate: torch.Tensor, reference: torch.Tensor, net: str = "alex",
          weights: str | Path | None = None) -> torch.Tensor | None:
    """LPIPS distance per image, ``(N,)``, or ``None`` when the backbone weights are absent.

    Images in [-1, 1] (LPIPS's own convention); gray images are replicated to 3 channels.
    """
    model = load_lpips(net, weights, estimate.device)
    if model is None:
        return None
    if estimate.shape[1] == 1:
        estimate, reference = estimate.expand(-1, 3, -1, -1), reference.expand(-1, 3, -1, -1)
    with torch.no_grad():
        return model(estimate.float(), reference.float()).flatten()


def lpips_status(net: str = "alex", weights: str | Path | None = None) -> str:
    """One line for reports: where LPIPS weights are, or why LPIPS is unavailable."""
    path = lpips_weights_path(net, weights)
    if path.is_file():
        return f"LPIPS ({net}) backbone: {path}"
    return (f"LPIPS unavailable: {path} not found (copy torchvision's {BACKBONE_FILES[net]} there, "
            f"set TORCH_HOME, or pass the weights file)")


__all__ = ["psnr", "ssim", "lpips", "load_lpips", "lpips_status", "lpips_weights_path"]
