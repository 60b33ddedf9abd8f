"""Shared fixtures: tiny configs with a private cache, and the real CelebA sample."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import circuitnb.core.config as C

ROOT = Path(__file__).resolve().parents[1]


def _celeba_sample() -> Path:
    # CI and local runs: the real 2,000-image sample beside the repo (never copied into it).
    return Path(os.environ.get("CIRCUITNB_CELEBA") or ROOT.parent / "shared" / "data" / "celeba")


@pytest.fixture(scope="session")
def celeba_root() -> Path:
    root = _celeba_sample()
    if not (root / "img_align_celeba").is_dir():
        pytest.fail(f"CelebA sample not found at {root}; set CIRCUITNB_CELEBA")
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("CIRCUITNB_CACHE", str(path))
    return path


@pytest.fixture
def tables(tmp_path, monkeypatch) -> Path:
    """A private folder for the CSVs that ``ChapterResult.show`` writes."""
    monkeypatch.setenv("CIRCUITNB_TABLES", str(tmp_path))
    return tmp_path


@pytest.fixture
def tiny_cfg(cache):
    """A model small enough to train a few steps in about a second on the synthetic data."""
    return C.load("smoke", n_images=16, n_analysis=8, batch_size=4, train_steps=6, checkpoint_every=2, warmup_steps=1,
                  block_out_channels=(8, 16, 16), device="cpu")


@pytest.fixture
def small_celeba(tmp_path, celeba_root) -> Path:
    """Ten real CelebA images, one corrupt file, and an attribute file covering only some."""
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    names = sorted(p.name for p in (celeba_root / "img_align_celeba").iterdir())[:10]
    for nm in names:
        shutil.copy(celeba_root / "img_align_celeba" / nm, root / "img_align_celeba" / nm)
    (root / "img_align_celeba" / "999999.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    lines = (celeba_root / "list_attr_celeba.txt").read_text().splitlines()
    header = lines[1]
    rows = [ln for ln in lines[2:] if ln.split()[0] in names[:4]]
    (root / "list_attr_celeba.txt").write_text("\n".join([str(len(rows)), header, *rows]) + "\n")
    return root


def random_unet(seed: int = 0, **overrides):
    """A smoke-sized UNet whose every weight is perturbed, so that each site matters (no trained model needed)."""
    import torch

    from circuitnb.modeling.unet import build_unet
    torch.manual_seed(seed)
    u = build_unet(C.load("smoke", block_out_channels=(16, 32, 32), **overrides), seed=seed).eval()
    with torch.no_grad():
        for p in u.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return u
