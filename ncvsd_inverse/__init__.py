"""ncvsd-inverse: imaging inverse problems with generative denoisers distilled by NCVSD.

``solve`` runs the posterior sampler on a measurement with a task preset; ``load_model`` loads
the shipped default (or any checkpoint). Images are (N, C, H, W) tensors in [-1, 1].

The names below are imported on first use, so that ``import ncvsd_inverse.operators`` (forward
models only) or ``ncvsd_inverse.tasks`` does not pull in the networks and the sampler.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_model": "api", "solve": "api", "load_prior": "priors",
    "PosteriorResult": "sampling", "generate": "sampling", "pnp_sigmas": "sampling",
    "posterior_sample": "sampling",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
