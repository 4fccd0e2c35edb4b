"""Numeric precision for encoding and training: which dtype to use on which device, and its autocast.

On the CPU, bfloat16 runs under autocast (matrix products in bf16, weights, norms and softmax in fp32);
it pays only where the CPU has bf16 dot products in hardware. Elsewhere bf16 is emulated and many times slower.
"""
from __future__ import annotations

import logging
import os
import platform
from contextlib import nullcontext
from typing import TYPE_CHECKING, ContextManager

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("pyterrier_hybrid")

DTYPES = ("auto", "float32", "bfloat16", "float16")
# torch is imported in the functions: the CLI reads DTYPES to build its parser, and should start fast


#: oneDNN's ISA caps below bf16 dot products: with ``ONEDNN_MAX_CPU_ISA`` set to one, torch's and OpenVINO's
#: kernels run as on a CPU without native bf16, so ``auto`` must not pick bf16 there
BELOW_BF16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


def cpu_name() -> str:
    """This host's CPU model (``/proc/cpuinfo``'s model name), or the platform's processor string elsewhere."""
    info = "/proc/cpuinfo"
    if os.path.isfile(info):
        with open(info) as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def native_bf16() -> bool:
    """Whether this CPU does bf16 dot products in hardware (AVX512-BF16 or AMX), as torch's cpuinfo reports, and
    ``ONEDNN_MAX_CPU_ISA`` does not cap the kernels below them."""
    import torch

    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in BELOW_BF16_ISAS:
        return False
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check() for check in checks if check is not None)


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bf16 in hardware: a CUDA device that supports it, or a CPU with native bf16."""
    import torch

    return torch.cuda.is_bf16_supported() if device.type == "cuda" else native_bf16()


def resolve_dtype(dtype: str, device: torch.device) -> str:
    """The concrete dtype for a requested one on a device.

    ``"auto"`` is bf16 on a CUDA device that supports it and on a CPU with native bf16, else fp32.
    fp16 needs CUDA; bf16 on a CPU without native support works but is slower, and says so.

    Args:
        dtype: one of :data:`DTYPES`.
        device: where the model runs.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; use one of {list(DTYPES)}")
    cuda = device.type == "cuda"
    if dtype == "auto":
        return "bfloat16" if fast_bf16(device) else "float32"
    if dtype == "float16" and not cuda:
        raise ValueError("dtype='float16' needs a CUDA device; on the CPU use 'bfloat16' or 'auto'")
    if dtype == "bfloat16" and not cuda and not native_bf16():
        logger.warning("this CPU has no native bf16 (AVX512-BF16 / AMX): bfloat16 is emulated, many times slower "
                       "than float32; use dtype='auto' to pick the faster one, or train without --amp bf16")
    return dtype


def autocast(device: torch.device, dtype: str) -> ContextManager:
    """Autocast to ``dtype`` on ``device`` (no-op for fp32)."""
    import torch

    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))
