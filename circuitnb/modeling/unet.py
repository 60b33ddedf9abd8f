"""The paper's DDPM as a diffusers ``UNet2DModel`` plus a cosine ``DDPMScheduler`` (§3.1).

    unet = build_unet(cfg)
    scheduler = build_scheduler(cfg)
    describe(unet)   # parameter count, attention layers and heads

The paper's "8 attention heads distributed across 3 transformer layers" is read
as 8 heads in each of 3 attention layers. They sit at the deepest resolution:
the last encoder block (``AttnDownBlock2D``, one layer per resnet) and the first
decoder block (``AttnUpBlock2D``, ``layers_per_block + 1`` layers); the mid
block's attention is off by default so the count is exactly 3. In diffusers,
``attention_head_dim`` is the size of one head, so it is width / n_heads.
"""
from __future__ import annotations

import pandas as pd
import torch
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.models.attention_processor import Attention

from circuitnb.core.config import Config


def unet_kwargs(cfg: Config) -> dict:
    """Constructor arguments of the UNet for a config (also stored in its config.json)."""
    m = cfg.model
    n = len(m.block_out_channels)
    return dict(
        sample_size=cfg.data.image_size, in_channels=3, out_channels=3,
        block_out_channels=tuple(m.block_out_channels), layers_per_block=m.layers_per_block,
        down_block_types=("DownBlock2D",) * (n - 1) + ("AttnDownBlock2D",),
        up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (n - 1),
        add_attention=m.mid_attention, attention_head_dim=m.block_out_channels[-1] // m.n_heads,
        norm_num_groups=m.norm_num_groups,
    )


def build_unet(cfg: Config, seed: int | None = None) -> UNet2DModel:
    """A freshly initialised UNet; weights are a deterministic function of ``seed``."""
    torch.manual_seed(cfg.run.seed if seed is None else seed)
    return UNet2DModel(**unet_kwargs(cfg))


def build_scheduler(cfg: Config) -> DDPMScheduler:
    """Cosine schedule (``squaredcos_cap_v2``) over ``num_train_timesteps`` steps."""
    return DDPMScheduler(num_train_timesteps=cfg.model.num_train_timesteps,
                         beta_schedule=cfg.model.beta_schedule, clip_sample=True)


def attention_layers(unet: torch.nn.Module) -> dict[str, Attention]:
    """Every diffusers ``Attention`` module, by module path, in forward order."""
    return {name: mod for name, mod in unet.named_modules() if isinstance(mod, Attention)}


def n_parameters(unet: torch.nn.Module) -> int:
    return sum(p.numel() for p in unet.parameters())


def describe(unet: UNet2DModel) -> pd.DataFrame:
    """One row per attention layer: path, heads, head size, tokens (of its resolution); and the parameter count."""
    size = unet.config.sample_size
    size = size[0] if isinstance(size, (list, tuple)) else size

    def tokens(name: str) -> int:
        # down_blocks.i / up_blocks.i sit at resolution level i / (n - 1 - i); the mid block at the deepest.
        n = len(unet.config.block_out_channels)
        part, index = name.split(".")[:2]
        level = n - 1 if part == "mid_block" else int(index) if part == "down_blocks" else n - 1 - int(index)
        return (size // 2 ** level) ** 2
    rows = [dict(layer=name, heads=mod.heads, head_dim=mod.inner_dim // mod.heads, width=mod.inner_dim,
                 tokens=tokens(name)) for name, mod in attention_layers(unet).items()]
    frame = pd.DataFrame(rows)
    frame.attrs["n_parameters"] = n_parameters(unet)
    return frame
