import pytest
import torch

import circuitnb.core.config as C
from circuitnb.modeling.unet import attention_layers, build_scheduler, build_unet, describe


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_three_attention_layers_of_eight_heads(profile):
    cfg = C.load(profile)
    unet = build_unet(cfg)
    layers = attention_layers(unet)
    assert len(layers) == 3
    assert all(m.heads == 8 for m in layers.values())
    table = describe(unet)
    assert (table.width == cfg.model.block_out_channels[-1]).all()
    assert table.attrs["n_parameters"] == sum(p.numel() for p in unet.parameters())


def test_mid_attention_adds_a_fourth_layer():
    assert len(attention_layers(build_unet(C.load("smoke", mid_attention=True)))) == 4


def test_quick_model_size_and_forward():
    cfg = C.load("quick")
    unet = build_unet(cfg)
    assert 2_500_000 < describe(unet).attrs["n_parameters"] < 3_000_000
    x = torch.randn(2, 3, 32, 32)
    assert unet(x, torch.tensor([10, 900])).sample.shape == x.shape


def test_cosine_schedule():
    s = build_scheduler(C.load("smoke"))
    assert s.config.beta_schedule == "squaredcos_cap_v2" and s.config.num_train_timesteps == 1000
    ab = s.alphas_cumprod
    assert ab[0] > 0.999 and ab[-1] < 1e-3 and (ab[1:] <= ab[:-1]).all()


def test_init_is_seeded():
    cfg = C.load("smoke")
    a, b = build_unet(cfg, seed=1), build_unet(cfg, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
