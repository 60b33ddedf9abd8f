"""Procedural synthetic faces with attributes and part masks (paper §3.1).

    faces = generate_faces(n=2000, image_size=32, seed=0)
    faces.images      # float32 [N, 3, H, W] in [-1, 1]
    faces.labels      # uint8 [N, H, W], index into PARTS (one part per pixel)
    faces.attributes  # pandas DataFrame, one row per image
    faces.mask("eyes")  # bool [N, H, W]

The paper generates its faces "with systematically controlled attributes
(expression, facial hair, gender, age, accessories, hair color) ... with
realistic attribute correlations" but does not publish the generator. Ours
draws the attributes from the joint law below (the correlations are stated in
:data:`CORRELATIONS`), then paints the face part by part in painter's order at
2x resolution and area-averages down, so images are anti-aliased while the
label map records which part is visible at each output pixel: ground truth for
what an attention head attends to.

Image ``i`` depends only on ``(seed, i)``, so the first ``k`` images of a run
with ``n > k`` equal a run with ``n = k``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PARTS = ("background", "skin", "hair", "eyes", "brows", "nose", "mouth", "facial_hair", "accessories")
PART_ID = {p: i for i, p in enumerate(PARTS)}

# The attribute law, stated once; `sample_attributes` implements exactly this.
CORRELATIONS = (
    "gender: P(male) = 0.5",
    "age: P(old) = 0.3, independent of gender",
    "facial hair (none/mustache/beard) only for men: P(any | young man) = 0.3, P(any | old man) = 0.6",
    "hair colour: old -> grey with P = 0.7; otherwise black/brown/blond, blond twice as likely for women",
    "hair length: long with P = 0.75 for women and 0.1 for men; old men are bald with P = 0.35",
    "accessories (none/glasses/earrings): glasses P = 0.15 young, 0.45 old; earrings only for women, P = 0.3",
    "expression (neutral/smiling/surprised): smiling P = 0.55 for women, 0.40 for men; surprised P = 0.1",
)

_HAIR_RGB = {"black": (0.10, 0.08, 0.07), "brown": (0.40, 0.25, 0.12),
             "blond": (0.90, 0.78, 0.45), "grey": (0.72, 0.72, 0.72)}
_SKIN_LIGHT, _SKIN_DARK = np.array([0.96, 0.82, 0.70]), np.array([0.42, 0.28, 0.18])


@dataclass
class SyntheticFaces:
    images: np.ndarray       # float32 [N, 3, H, W] in [-1, 1]
    labels: np.ndarray       # uint8 [N, H, W]
    attributes: pd.DataFrame
    seed: int

    parts = PARTS

    def mask(self, part: str) -> np.ndarray:
        """Boolean [N, H, W] mask of one part (see :data:`PARTS`)."""
        if part not in PART_ID:
            raise ValueError(f"unknown part {part!r}; choose one of {PARTS}")
        return self.labels == PART_ID[part]

    def __len__(self) -> int:
        return len(self.images)


def sample_attributes(n: int, seed: int) -> pd.DataFrame:
    """Draw ``n`` attribute rows from the joint law in :data:`CORRELATIONS`."""
    # One row of uniforms per image from its own stream, so row i does not depend on n.
    u = np.stack([np.random.default_rng([seed, i, 0xA77]).random(9) for i in range(n)]).T
    male = u[0] < 0.5
    old = u[1] < 0.3
    p_fh = np.where(old, 0.6, 0.3) * male
    facial_hair = np.where(u[2] < p_fh / 2, "mustache", np.where(u[2] < p_fh, "beard", "none"))
    tot = 2.0 + np.where(male, 1.0, 2.0)                     # blond weight 1 for men, 2 for women
    base = np.where(u[3] < 1 / tot, "black", np.where(u[3] < 2 / tot, "brown", "blond"))
    hair_colour = np.where(old & (u[4] < 0.7), "grey", base)
    bald = male & old & (u[5] < 0.35)
    long_hair = (u[6] < np.where(male, 0.1, 0.75)) & ~bald
    p_glasses = np.where(old, 0.45, 0.15)
    p_earrings = np.where(male, 0.0, 0.3)
    accessory = np.where(u[7] < p_glasses, "glasses", np.where(u[7] < p_glasses + p_earrings, "earrings", "none"))
    p_smile = np.where(male, 0.40, 0.55)
    expression = np.where(u[8] < p_smile, "smiling", np.where(u[8] < p_smile + 0.1, "surprised", "neutral"))
    skin_tone = np.array([np.random.default_rng([seed, i, 0x5C1]).random() for i in range(n)]).round(3)
    return pd.DataFrame({
        "gender": np.where(male, "male", "female"), "age": np.where(old, "old", "young"),
        "expression": expression, "facial_hair": facial_hair, "hair_colour": hair_colour,
        "hair_length": np.where(bald, "bald", np.where(long_hair, "long", "short")),
        "accessory": accessory, "skin_tone": skin_tone,
    })


def _ellipse(u, v, cx, cy, rx, ry):
    return ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 <= 1.0


def _paint(row, rng: np.random.Generator, hr: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint one face at resolution ``hr``; returns (rgb [hr, hr, 3], labels [hr, hr])."""
    ax = (np.arange(hr) + 0.5) / hr * 2 - 1
    v, u = np.meshgrid(ax, ax, indexing="ij")   # u: x to the right, v: y downwards, both in [-1, 1]
    lab = np.zeros((hr, hr), np.uint8)
    cx, cy = rng.normal(0, 0.04), 0.02 + rng.normal(0, 0.03)
    male, old = row.gender == "male", row.age == "old"
    fw = (0.50 if male else 0.46) + rng.normal(0, 0.02)        # face half-width
    fh = 0.62 + rng.normal(0, 0.02)                              # face half-height
    skin_rgb = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * row.skin_tone
    hair_rgb = np.array(_HAIR_RGB[row.hair_colour]) * (1 + rng.normal(0, 0.05))
    bg_rgb = rng.uniform(0.15, 0.85, 3)

    # Painter's order: back hair, neck, face, hair cap, then features on top.
    if row.hair_length == "long":
        lab[_ellipse(u, v, cx, cy + 0.15, fw + 0.18, fh + 0.25) & (v > cy - 0.2)] = PART_ID["hair"]
    lab[(np.abs(u - cx) < fw * 0.45) & (v > cy + fh * 0.6)] = PART_ID["skin"]              # neck
    face = _ellipse(u, v, cx, cy, fw, fh)
    lab[face] = PART_ID["skin"]
    if row.hair_length != "bald":
        cap = _ellipse(u, v, cx, cy - 0.06, fw + 0.08, fh + 0.08) & (v < cy - fh * 0.45 + 0.1 * np.abs(u - cx))
        lab[cap] = PART_ID["hair"]
    ey = cy - 0.10 * fh / 0.62
    ex = 0.42 * fw
    brow_h = 0.035 if male else 0.022
    for s in (-1, 1):
        lab[_ellipse(u, v, cx + s * ex, ey - 0.12, 0.12, brow_h)] = PART_ID["brows"]
        lab[_ellipse(u, v, cx + s * ex, ey, 0.09, 0.05)] = PART_ID["eyes"]
    nose = (v > ey + 0.05) & (v < cy + 0.22) & (np.abs(u - cx) < 0.03 + 0.25 * (v - ey - 0.05))
    lab[nose] = PART_ID["nose"]
    my = cy + 0.38 * fh / 0.62
    if row.facial_hair == "beard":
        lab[face & (v > my - 0.06) & ~_ellipse(u, v, cx, my, 0.16, 0.06)] = PART_ID["facial_hair"]
    if row.facial_hair in ("beard", "mustache"):
        lab[_ellipse(u, v, cx, my - 0.09, 0.2, 0.04)] = PART_ID["facial_hair"]
    if row.expression == "surprised":
        mouth = _ellipse(u, v, cx, my, 0.08, 0.07)
    else:
        curv = 0.10 if row.expression == "smiling" else 0.0
        line = my + curv * (0.5 - ((u - cx) / 0.18) ** 2)     # corners rise when smiling (v points down)
        mouth = (np.abs(u - cx) < 0.18) & (np.abs(v - line) < 0.035)
    lab[mouth] = PART_ID["mouth"]
    if row.accessory == "glasses":
        for s in (-1, 1):
            r = np.hypot((u - cx - s * ex) / 0.15, (v - ey) / 0.12)
            lab[(r > 0.8) & (r < 1.05)] = PART_ID["accessories"]
        lab[(np.abs(v - ey) < 0.02) & (np.abs(u - cx) < ex - 0.12)] = PART_ID["accessories"]
    elif row.accessory == "earrings":
        for s in (-1, 1):
            lab[_ellipse(u, v, cx + s * (fw + 0.02), cy + 0.18, 0.04, 0.04)] = PART_ID["accessories"]

    palette = np.stack([bg_rgb, skin_rgb, hair_rgb, (0.12, 0.10, 0.10), hair_rgb * 0.7,
                        skin_rgb * 0.85, (0.65, 0.22, 0.25), hair_rgb * 0.9, (0.20, 0.20, 0.25)])
    if row.accessory == "earrings":
        palette[PART_ID["accessories"]] = (0.95, 0.80, 0.20)
    rgb = palette[lab]
    # Soft frontal lighting on the head, a background gradient, and wrinkles for old faces.
    shade = 1 - 0.25 * (((u - cx) / (fw + 0.2)) ** 2 + ((v - cy) / (fh + 0.3)) ** 2)
    head = lab != PART_ID["background"]
    rgb[head] *= shade[head, None]
    rgb[~head] *= (0.85 + 0.15 * (v[~head, None] + 1) / 2)
    if old:
        wr = (lab == PART_ID["skin"]) & (np.abs(np.sin(v * 40)) < 0.15) & (v < ey - 0.15)
        rgb[wr] *= 0.85
    rgb += rng.normal(0, 0.02, rgb.shape)   # sensor noise, so no two pixels of a part are identical
    return np.clip(rgb, 0, 1), lab


def generate_faces(n: int, image_size: int = 32, seed: int = 0) -> SyntheticFaces:
    """Generate ``n`` faces of ``image_size`` pixels, deterministic per ``seed``."""
    if n < 1 or image_size < 8:
        raise ValueError(f"need n >= 1 and image_size >= 8, got n={n}, image_size={image_size}")
    attrs = sample_attributes(n, seed)
    ss = 2                                                   # supersampling factor
    hr = image_size * ss
    images = np.empty((n, 3, image_size, image_size), np.float32)
    labels = np.empty((n, image_size, image_size), np.uint8)
    for i, row in enumerate(attrs.itertuples(index=False)):
        rgb, lab = _paint(row, np.random.default_rng([seed, i]), hr)
        images[i] = rgb.reshape(image_size, ss, image_size, ss, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
        labels[i] = lab[ss // 2::ss, ss // 2::ss]            # the part at each output pixel's centre
    return SyntheticFaces(images=images * 2 - 1, labels=labels, attributes=attrs, seed=seed)
