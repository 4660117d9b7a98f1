"""Training: the teacher (EDM2 denoising score matching, DESIGN 3.1) and the NCVSD distiller (3.4).

One code path for 1..N processes: under ``torchrun`` each rank draws its own shard of patches,
gradients are averaged by DDP (gloo on CPU, nccl on GPU), rank 0 logs and checkpoints. Every
random draw of step ``k`` on rank ``r`` comes from a generator seeded with ``(seed, k, r)``, so a
run resumed from a checkpoint continues bit for bit like an uninterrupted one.

The losses are small callables (:class:`TeacherLoss`, :class:`NCVSDLoss`); the loops take the
networks and the teacher as arguments, so tests can train tiny networks against analytic models.
"""

from .config import (
    PRESET_DIR,
    VALIDATION_SEED,
    DistillConfig,
    RecipeConfig,
    TeacherConfig,
    available_presets,
    check_ranges,
    load_preset,
    merge_settings,
    network_description,
    preset_path,
    read_preset,
    to_plain,
)
from .data import PatchDataset, step_generator
from .distillation import build_distillation_nets, distill
from .loop import (
    Distributed,
    Run,
    StopRequest,
    learning_rate,
    power_ema_exponent,
    setup_distributed,
    teardown_distributed,
    train_loop,
    update_ema,
)
from .losses import NCVSDLoss, TeacherLoss, posterior_mean_bias
from .teacher import save_denoising_grid, train_teacher

__all__ = [
    "PRESET_DIR", "VALIDATION_SEED", "DistillConfig", "Distributed", "NCVSDLoss", "PatchDataset", "RecipeConfig",
    "Run", "StopRequest", "TeacherConfig", "TeacherLoss", "available_presets", "build_distillation_nets",
    "check_ranges", "distill", "learning_rate", "load_preset", "merge_settings", "network_description",
    "posterior_mean_bias", "power_ema_exponent", "preset_path", "read_preset", "save_denoising_grid",
    "setup_distributed", "step_generator", "teardown_distributed", "to_plain", "train_loop", "train_teacher",
    "update_ema",
]
