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
