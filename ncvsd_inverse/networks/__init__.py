"""Networks: an EDM2-style magnitude-preserving UNet and the denoisers built from it.

- :mod:`.layers`: EDM2's magnitude-preserving primitives and the residual block;
- :mod:`.unet`: the UNet ``F(x, c_noise)`` (encoder + decoder) and the generator's conditional backbones;
- :mod:`.denoisers`: the preconditioned teacher ``Denoiser`` (DESIGN 3.1) and the generator's
  ``ConditionalDenoiser`` / ``GenerativeDenoiser`` (DESIGN 3.3);
- :mod:`.discriminator`: the NCVSD ``Discriminator`` of the GAN term (DESIGN 3.4);
- :mod:`.handling`: compiling for training, parameter counts, frozen copies.
"""

from .denoisers import ConditionalDenoiser, Denoiser, GenerativeDenoiser, UncertaintyHead, build_teacher
from .discriminator import Discriminator
from .handling import clone_frozen, compile_for_training, count_parameters
from .layers import Block, MPConv, MPFourier, mp_cat, mp_silu, mp_sum, normalize
from .unet import (
    CONDITION_BACKBONES,
    ConditionalUNet,
    Decoder,
    Encoder,
    InputConcatUNet,
    UNet,
    UNetConfig,
    count_encoders,
    pad_to_multiple,
    unet_config,
)

__all__ = [
    "Block", "CONDITION_BACKBONES", "ConditionalDenoiser", "ConditionalUNet", "Decoder", "Denoiser",
    "Discriminator", "Encoder", "GenerativeDenoiser", "InputConcatUNet", "MPConv", "MPFourier", "UNet",
    "UNetConfig", "UncertaintyHead", "build_teacher", "clone_frozen", "compile_for_training", "count_encoders",
    "count_parameters", "mp_cat", "mp_silu", "mp_sum", "normalize", "pad_to_multiple", "unet_config",
]
