"""Whole-network handling: compile for training, count parameters, frozen copies."""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn

from .layers import MPConv


def compile_for_training(net: nn.Module) -> Callable[..., Any]:
    """``torch.compile(net)`` for its training-mode calls, with the forced weight normalisation
    of every :class:`MPConv` in ``net`` done eagerly before each call (the compiled graph skips
    it, see ``MPConv.forward``): the same weights and outputs as the eager ``net``, in fewer
    passes over memory (the manual's Training page has the speed-ups)."""
    compiled = torch.compile(net)
    convs = [m for m in net.modules() if isinstance(m, MPConv)]

    def forward(*args, **kwargs):
        for conv in convs:
            if conv.training:
                conv.project_weight_()
        return compiled(*args, **kwargs)

    return forward


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def clone_frozen(module: nn.Module) -> nn.Module:
    """A deep copy in eval mode with gradients off (EMA copies, frozen teachers)."""
    frozen = copy.deepcopy(module).eval()
    frozen.requires_grad_(False)
    return frozen
