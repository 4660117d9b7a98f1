"""Forward models ``y = A(x) + sigma_y n`` and their likelihood steps (DESIGN 3.7).

Images are ``(N, C, H, W)`` tensors in [-1, 1], any size, on any device.
"""

from .base import ImageTooSmallError, Operator, conjugate_gradient
from .blur import Blur, gaussian_kernel, kernel_to_otf, motion_kernel
from .deepinv_bridge import (
    DeepinvOperator,
    deepinv_noise_sigma,
    from_deepinv,
    measurement_from_deepinv,
    measurement_to_deepinv,
    native_twin,
    to_deepinv,
    to_deepinv_svd,
)
from .inpainting import Denoising, Inpainting, box_mask, random_mask
from .phase_retrieval import PhaseRetrieval
from .superres import SuperResolution, resampling_matrix

__all__ = [
    "Blur", "DeepinvOperator", "Denoising", "ImageTooSmallError", "Inpainting", "Operator",
    "PhaseRetrieval", "SuperResolution", "box_mask", "conjugate_gradient", "deepinv_noise_sigma",
    "from_deepinv", "gaussian_kernel", "kernel_to_otf", "measurement_from_deepinv",
    "measurement_to_deepinv", "motion_kernel", "native_twin", "random_mask", "resampling_matrix", "to_deepinv",
    "to_deepinv_svd",
]
