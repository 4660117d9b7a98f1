"""ncvsd-inverse: imaging inverse problems with generative denoisers distilled by NCVSD.

``solve`` runs the posterior sampler on a measurement with a task preset; ``load_model`` loads
the shipped default (or any checkpoint). Images are (N, C, H, W) tensors in [-1, 1].
"""

from .api import load_model, solve
from .sampling import PosteriorResult, generate, pnp_sigmas, posterior_sample

__all__ = ["generate", "load_model", "pnp_sigmas", "posterior_sample", "PosteriorResult", "solve"]
__version__ = "0.1.0"
