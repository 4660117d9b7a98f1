"""What this machine is, for the records benchmarks write: its CPU (model name and the vector
extensions that decide its speed here), threads, GPU and torch. The same 2-core CPU class has come
with and without AVX512-BF16, 3-5x apart in training speed, so every timing names its CPU."""

from __future__ import annotations

import functools
import platform
import warnings
from pathlib import Path

import torch

#: The CPU extensions that set this project's speeds: AVX2 (float32 convolutions), AVX512 and
#: AVX512-BF16 / AMX-BF16 (native bfloat16; :func:`~ncvsd_inverse.sampling.native_bfloat16`).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def parse_cpu_info(text: str) -> tuple[str, frozenset[str]]:
    """``(model name, flags)`` of the first processor in a ``/proc/cpuinfo`` text (``""`` and no
    flags where a field is missing)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", ""), frozenset(fields.get("flags", "").split())


@functools.lru_cache(maxsize=None)
def cpu_info() -> tuple[str, frozenset[str]]:
    """:func:`parse_cpu_info` of this machine's ``/proc/cpuinfo``; where that cannot be read (not
    Linux), the platform's processor or machine name and no flags."""
    try:
        name, flags = parse_cpu_info(Path("/proc/cpuinfo").read_text())
    except OSError:
        name, flags = "", frozenset()
    return name or platform.processor() or platform.machine(), flags


def cpu_model() -> str:
    """The CPU's model name and its :data:`SPEED_FLAGS`, e.g. ``"AMD EPYC (avx2)"``."""
    name, flags = cpu_info()
    wanted = [flag for flag in SPEED_FLAGS if flag in flags]
    return f"{name} ({', '.join(wanted) or 'no AVX2'})"


#: Arithmetic of the network evaluations (the likelihood steps are always float32); ``auto``:
#: bfloat16 where it is native (:func:`native_bfloat16`), else float32.
PRECISIONS = ("auto", "float32", "bfloat16")


@functools.lru_cache(maxsize=None)
def native_bfloat16(device_type: str = "cpu") -> bool:
    """Whether bfloat16 arithmetic is native on this machine's ``device_type``.

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: the AVX512-BF16 or AMX-BF16 instructions
    (read from ``/proc/cpuinfo``; oneDNN uses them for bf16 convolutions). Without them torch
    emulates bf16 on a CPU, many times slower than float32 (the manual's Speed page).
    """
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    return not cpu_info()[1].isdisjoint({"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device_type: str = "cpu") -> str:
    """``"float32"`` or ``"bfloat16"``: ``precision`` itself, or for ``"auto"`` bfloat16 where it
    is native on ``device_type`` and float32 elsewhere (both give the same quality: the manual's
    Solving page)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device_type) else "float32"
    return precision


@functools.lru_cache(maxsize=None)
def warn_emulated_bfloat16(device_type: str) -> None:
    """Warn once per device type that bfloat16 runs emulated there (the sampler and the trainer)."""
    warnings.warn(f"bfloat16 is not native on this {device_type} (no AVX512-BF16/AMX on a CPU): the network runs "
                  "emulated, many times slower than float32; use precision float32", RuntimeWarning, stacklevel=4)


def describe_machine(device: str | torch.device = "cpu") -> dict:
    """The machine a benchmark ran on: ``device``, ``cpu`` (:func:`cpu_model`), ``threads``,
    ``gpu`` (its name, or None), ``native_bfloat16`` on ``device`` and ``torch``'s version."""
    device = torch.device(device)
    return {"device": str(device), "cpu": cpu_model(), "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "native_bfloat16": native_bfloat16(device.type), "torch": torch.__version__}


def machine_summary(device: str | torch.device = "cpu") -> str:
    """:func:`describe_machine` in one line, for reports."""
    about = describe_machine(device)
    return (f"{about['cpu']}, {about['threads']} threads, {about['gpu'] or 'no GPU'}, "
            f"torch {about['torch']}")


__all__ = ["PRECISIONS", "SPEED_FLAGS", "cpu_info", "parse_cpu_info", "cpu_model", "describe_machine",
           "machine_summary", "native_bfloat16", "resolve_precision", "warn_emulated_bfloat16"]
