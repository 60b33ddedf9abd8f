"""Training precision: bf16 autocast where the device computes bf16 natively, fp32 elsewhere.

    precision = resolve(cfg.train.precision, cfg.device)   # "bf16" or "fp32"
    with autocast(cfg.device, precision): eps_hat = unet(x_t, t).sample
    print(describe(cfg.train.precision, cfg.device))       # one line: which path ran, and why

Only the forward and backward passes of training run under autocast; master weights, the optimizer
state, the EMA and the loss stay fp32, and analysis and hooks never use autocast, so recording stays
exact. Why detect instead of assume: on a CPU without native bf16 (no AVX512-BF16 and no AMX), oneDNN
emulates bf16 and a step gets slower, not faster; CPUs differ between machines.
"""
from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

PRECISIONS = ("auto", "fp32", "bf16")
# /proc/cpuinfo flags that mean the CPU multiplies bf16 in hardware (x86: AVX512-BF16, AMX; Arm: BF16).
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The native-bf16 flags this CPU reports in /proc/cpuinfo (empty where there are none or no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return tuple(f for f in _NATIVE_BF16_FLAGS if f in flags)


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bf16 natively: CUDA by torch's check, a CPU by its flags."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device == "cpu":
        return bool(cpu_bf16_flags())
    return False                                                   # mps: fp32


def resolve(precision: str, device: str) -> str:
    """The precision training runs in: ``"auto"`` is bf16 on a device with native bf16, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def cache_tag(precision: str, device: str) -> str:
    """What keys a trained model's cache entry: the resolved precision, and on a CPU in bf16 the attention
    kernel too (another kernel rounds differently, so its weights differ)."""
    chosen = resolve(precision, device)
    return "bf16-sdpa-math" if chosen == "bf16" and device == "cpu" else chosen


def autocast(device: str, precision: str):
    """The autocast context of training's forward pass (a no-op for fp32).

    On a CPU, bf16 attention also runs on SDPA's math kernel: at the quick model's 64 tokens the CPU
    flash kernel's bf16 backward took ~70 ms of a ~0.42 s step, and the math kernel makes the step ~20%
    faster (one thread, batch 16; measured 2026-12-05). CUDA keeps torch's own kernel choice.
    """
    if precision != "bf16":
        return contextlib.nullcontext()
    if device.startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    stack = contextlib.ExitStack()
    stack.enter_context(torch.autocast(device_type="cpu", dtype=torch.bfloat16))
    stack.enter_context(sdpa_kernel(SDPBackend.MATH))
    return stack


def describe(precision: str, device: str) -> str:
    """One line for the build log and chapter 1: the path that runs, and why."""
    chosen = resolve(precision, device)
    if device == "cpu":
        why = (f"native bf16 on this CPU ({', '.join(cpu_bf16_flags())})" if cpu_bf16_flags()
               else f"no native bf16 on this CPU ({platform.processor() or platform.machine()}: "
                    "no avx512_bf16/amx_bf16 flag)")
    else:
        why = f"device {device}, native bf16: {native_bf16(device)}"
    how = "bf16 autocast (fp32 master weights, EMA and loss)" if chosen == "bf16" else "fp32"
    return f"training precision: {how}; setting {precision!r}, {why}"
