"""The methods a benchmark suite compares, all on the same teacher (and its NCVSD generator).

Each method turns a posed :class:`~ncvsd_inverse.problem.Problem` into ``runs`` estimates. Its
settings come from the suite file (validated by :meth:`Method.settings`); one *variant* per NFE
point (e.g. each entry of ``steps: [50, 20, 10]``). The network calls are counted by a forward
hook on the model (:class:`Models`), so the reported NFE is what ran, not what was asked for.

One module per family: :mod:`.base` (what they share), :mod:`.pnp` (NCVSD and the teacher's
chain), :mod:`.deepinv_samplers` (DPS, DiffPIR, DDRM through deepinv), :mod:`.daps` (DAPS, ours),
:mod:`.classical` (the operators' baselines and TV). :data:`METHODS` names them all.

Peers run as their authors' defaults say, with the deliberate differences in :data:`DEVIATIONS`
(printed under the results table):

- DPS, DiffPIR and DDRM are deepinv 0.5's, on our teacher through :class:`DeepinvDenoiser`.
- DPS: the paper's step size mapped onto deepinv's per-step weight (:func:`dps_step_weights`).
- DDRM: the denoiser is told the noise level deepinv actually injects (:func:`ddrm_noise_scale`),
  and it runs on zero-mean data.
- DAPS is ours (:mod:`ncvsd_inverse.daps`).
"""

from __future__ import annotations

from .base import Method, MethodSettingsError, Models, checked_setting, seeded_runs, timed_run
from .classical import Classical, tv_deconvolution
from .daps import DAPS
from .deepinv_samplers import (
                                                   DDRM,
                                                   DPS,
                                                   DeepinvDenoiser,
                                                   DiffPIR,
                                                   ddrm_noise_scale,
                                                   dps_step_weights,
                                                   physics_and_measurement,
                                                   physics_for,
)
from .pnp import PnP

METHODS: dict[str, Method] = {m.name: m for m in (PnP("ncvsd", "ncvsd"), PnP("pnp_teacher", "teacher"), DPS(),
                                                   DiffPIR(), DDRM(), DAPS(), Classical())}

#: Where a method deviates from its authors' defaults (printed under the results table).
DEVIATIONS = {
    "dps": "DPS: deepinv's posterior diffusion (VP, DDPM solver, residual-norm guidance) with the paper's step size "
           "zeta mapped onto deepinv's per-step weight; one network call and one backward pass per step, no call "
           "at the last of the `steps` time points.",
    "ddrm": "DDRM: deepinv's, run on zero-mean data (images halved from [-1, 1]) as the official code does, "
            "with the denoiser told the noise level actually injected (deepinv passes sigma and injects "
            "sigma/sqrt(2) on a real SVD); SR runs on our separable SVD of the bicubic resampling matrices.",
    "diffpir": "DiffPIR: deepinv's implementation; its lambda L weighs the data step as the official code's 2L "
               "(deepinv issue 1030); lambda 0.5 (official 1) for inpainting, 7 (official 14) for SR and Gaussian "
               "deblurring, 25 (official 50) for motion deblurring, chosen on the validation split.",
    "daps": "DAPS: this project's implementation on the EDM teacher with the authors' settings, following their "
            "code where it differs from the paper (Langevin on ||A x0 - y||^2 / tau^2, i.e. a likelihood std of "
            "tau/sqrt(2); truncated poly-7 grids).",
}

__all__ = [
    "DAPS", "DDRM", "DEVIATIONS", "DPS", "METHODS", "Classical", "DeepinvDenoiser", "DiffPIR", "Method",
    "MethodSettingsError", "Models", "PnP", "checked_setting", "ddrm_noise_scale", "dps_step_weights",
    "physics_and_measurement", "physics_for", "seeded_runs", "timed_run", "tv_deconvolution",
]
