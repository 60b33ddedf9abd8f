"""Training precision: bf16 only where the device has it natively, detected, never assumed."""
import pytest
import torch

from circuitnb.modeling import precision


@pytest.mark.parametrize("flags, expected", [((), "fp32"), (("avx512_bf16",), "bf16"), (("amx_bf16",), "bf16")])
def test_auto_follows_the_cpu_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: flags)
    assert precision.resolve("auto", "cpu") == expected
    assert precision.resolve("fp32", "cpu") == "fp32" and precision.resolve("bf16", "cpu") == "bf16"
    line = precision.describe("auto", "cpu")
    assert ("bf16 autocast" in line) == (expected == "bf16") and "\n" not in line
    assert (flags[0] in line) if flags else "no native bf16" in line


def test_flags_are_read_from_this_machine():
    flags = precision.cpu_bf16_flags()
    assert set(flags) <= {"avx512_bf16", "amx_bf16", "bf16"}
    assert precision.resolve("auto", "cpu") == ("bf16" if flags else "fp32")


def test_autocast_only_for_bf16():
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with precision.autocast("cpu", "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with precision.autocast("cpu", "fp32"):
        assert layer(x).dtype == torch.float32
    assert layer.weight.dtype == torch.float32                      # master weights untouched


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="precision 'fp8'"):
        precision.resolve("fp8", "cpu")


def test_cpu_bf16_attention_runs_on_the_math_kernel_and_keys_the_cache():
    # The CPU flash kernel's bf16 backward was slow at the quick model's 64 tokens, so training's autocast on
    # a CPU picks SDPA's math kernel; it rounds differently, so the cache key says so. fp32 and CUDA are left
    # to torch's own choice.
    q = torch.randn(2, 4, 64, 16)
    with precision.autocast("cpu", "bf16"):
        assert not torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.math_sdp_enabled()
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert out.dtype == torch.bfloat16
    assert torch.backends.cuda.flash_sdp_enabled()                    # restored on the way out
    assert precision.cache_tag("bf16", "cpu") == "bf16-sdpa-math"
    assert precision.cache_tag("fp32", "cpu") == "fp32" and precision.cache_tag("bf16", "cuda") == "bf16"
