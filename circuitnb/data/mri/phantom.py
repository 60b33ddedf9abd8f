"""A procedural brain-MRI phantom: a stand-in for BraTS2020 with the same four contrasts, labels and slicing.

    d = phantom_dataset(20, size=64, n_slices=16, seed=0)   # MRISlices: images float32 [N, 4, 64, 64] in [-1, 1]
    images, seg, tissue = phantom_volume(3, seed=0, side=128, depth=16)     # one subject's raw stack

It is not real anatomy: a stand-in to build and test Part V without BraTS, which cannot be downloaded here.
Each subject is a head of nested ellipsoid shells, in head coordinates (u, v, w) where the head's surface is
radius rho = 1: scalp (fat) out to rho 1, skull bone, a rim of CSF, a grey-matter cortex and white matter whose
boundary is folded into gyri (a sinusoid in the in-plane angle that turns from slice to slice), CSF in sulci
between gyri and in the midline fissure, and two lateral ventricles (tilted ellipsoids, their size varying
2-fold between subjects). Per subject: head size, position and in-plane angle, shell radii, gyri, ventricles,
tissue intensities (5% jitter), scanner gain per modality, a linear bias field and voxel noise. Axial slices
cover w in [-0.55, 0.55], where every slice holds brain; images are drawn nose up (anterior at row 0).

A lesion subject (probability ``lesion_rate``) carries one tumour inside the brain: nested lumpy shells of
necrotic core (BraTS label 1) inside enhancing tumour (4) inside oedema (2), the same lumps scaled, so the masks
nest exactly. Slices away from the tumour are healthy, as are all slices of the other subjects.

Relative intensities (:data:`CONTRAST`) follow common MR appearance: CSF dark on T1 and bright on T2; FLAIR is
T2-like with CSF suppressed, so oedema is its brightest tissue; white matter brighter than grey on T1, darker on
T2; fat bright on T1; bone dark everywhere; the enhancing rim brightest on T1ce (gadolinium), necrosis dark on
T1 and bright on T2. Volumes go through the BraTS path (:func:`~circuitnb.data.mri.brats.slice_volume`):
percentile normalisation, area-averaged resizing from ``antialias`` times the output size, and the same slice
rules. Each subject draws from its own generator, seeded by (seed, subject index), and is sliced alone, so a
subject's slices are bit-identical whichever subjects are drawn with it.
"""
from __future__ import annotations

import numpy as np

from circuitnb.data.mri.brats import MODALITIES, MRIDataError, MRISlices, check_slicing, kept, slice_volume

TISSUES = ("background", "scalp", "skull", "csf", "grey", "white", "necrosis", "oedema", "enhancing")
SEG_OF_TISSUE = np.array([0, 0, 0, 0, 0, 0, 1, 2, 4], np.uint8)    # the BraTS label of each tissue
# Relative intensity of each tissue (columns, TISSUES order) in each modality (rows, MODALITIES order).
CONTRAST = np.array([
    # bg  scalp skull  csf  grey white necro oedema enh
    [0.0, 0.70, 0.08, 0.10, 0.60, 0.48, 0.45, 0.95, 0.75],   # flair: CSF suppressed, oedema brightest
    [0.0, 0.85, 0.08, 0.18, 0.50, 0.72, 0.22, 0.38, 0.48],   # t1: CSF dark, white > grey, fat bright
    [0.0, 0.85, 0.08, 0.18, 0.52, 0.72, 0.22, 0.38, 1.00],   # t1ce: t1 with the enhancing rim brightest
    [0.0, 0.55, 0.06, 1.00, 0.62, 0.45, 0.90, 0.85, 0.60],   # t2: CSF brightest, grey > white, oedema bright
])
SLAB = 0.55                       # axial slices cover w in [-SLAB, SLAB]: inside the brain at every slice
_NOISE = 0.02                     # voxel noise, in units of CONTRAST, before gain and bias
_FLOOR = 0.01                     # least intensity inside the head, so the head is foreground (non-zero)


def _anatomy(rng: np.random.Generator) -> dict:
    """One stand-in subject's shape and intensity parameters, drawn in a fixed order, none from the grid."""
    p = {"ax": 0.66 * rng.uniform(0.9, 1.1), "ay": 0.80 * rng.uniform(0.9, 1.1),       # head semi-axes
         "cx": rng.uniform(-0.05, 0.05), "cy": rng.uniform(-0.05, 0.05),               # head centre
         "turn": np.deg2rad(rng.uniform(-10, 10)),                                      # in-plane angle
         "bone": rng.uniform(0.92, 0.94), "rim": rng.uniform(0.86, 0.88), "brain": rng.uniform(0.83, 0.85),
         "r_wm": rng.uniform(0.62, 0.70), "gyri_amp": rng.uniform(0.04, 0.08),
         "gyri_n": int(rng.integers(7, 13)), "gyri_phase": rng.uniform(0, 2 * np.pi),
         "vent_x": 0.13 * rng.uniform(0.85, 1.15), "vent_y": rng.uniform(-0.12, 0.0),
         "vent_z": rng.uniform(0.0, 0.15), "vent_scale": rng.uniform(0.7, 1.4),
         "vent_tilt": np.deg2rad(rng.uniform(5, 20))}
    direction = rng.normal(size=3)
    p["tumour"] = direction / np.linalg.norm(direction) * rng.uniform(0.0, 0.45)       # centre, rho <= 0.45
    p["r_oedema"] = rng.uniform(0.15, 0.26)
    # Shells at least ~0.02 thick (the rim; a pixel at 192 px is ~0.017), so a fine grid sees them nest.
    p["r_enh"] = p["r_oedema"] * rng.uniform(0.5, 0.7)
    p["r_core"] = p["r_enh"] * rng.uniform(0.45, 0.7)
    p["lump_amp"], p["lump_k"], p["lump_phase"] = rng.uniform(0.05, 0.15), int(rng.integers(2, 5)), \
        rng.uniform(0, 2 * np.pi)
    p["draw"] = rng.random()                                                            # lesion if < lesion_rate
    p["contrast"] = CONTRAST * (1 + 0.05 * rng.standard_normal(CONTRAST.shape))
    p["gain"] = rng.uniform(0.6, 1.4, len(MODALITIES))
    p["bias"], p["bias_dir"] = rng.uniform(0.0, 0.2), rng.uniform(0, 2 * np.pi)
    return p


def _tissue(p: dict, side: int, depth: int, lesion: bool) -> np.ndarray:
    """The stand-in head's tissue codes (TISSUES), uint8 [depth, side, side]."""
    g = (np.arange(side) + 0.5) / side * 2 - 1                 # pixel centres in [-1, 1]
    x, y = g[None, None, :], g[None, :, None]
    w = (np.linspace(-SLAB, SLAB, depth) if depth > 1 else np.zeros(1))[:, None, None]
    c, s = np.cos(p["turn"]), np.sin(p["turn"])
    u = (c * (x - p["cx"]) + s * (y - p["cy"])) / p["ax"]
    v = (-s * (x - p["cx"]) + c * (y - p["cy"])) / p["ay"]
    rho = np.sqrt(u ** 2 + v ** 2 + w ** 2)
    fold = np.sin(p["gyri_n"] * np.arctan2(v, u) + p["gyri_phase"] + 2.5 * w)
    r_wm = p["r_wm"] * (1 + p["gyri_amp"] * fold)
    t = np.zeros(rho.shape, np.uint8)
    for code, radius in ((1, 1.0), (2, p["bone"]), (3, p["rim"]), (4, p["brain"])):
        t[rho < radius] = code
    t[rho < r_wm] = 5
    cortex = (rho >= r_wm) & (rho < p["brain"])
    t[cortex & (fold < -0.8) & (rho > 1.08 * r_wm)] = 3        # sulci: CSF clefts between gyri
    t[cortex & (np.abs(u) < 0.02)] = 3                         # the midline fissure, front and back
    a = p["vent_scale"] * np.array([0.07, 0.30, 0.25])
    for side_sign in (-1, 1):                                  # the two lateral ventricles, diverging backwards
        du, dv = u - side_sign * p["vent_x"], v - p["vent_y"]
        ct, st = np.cos(p["vent_tilt"]), -side_sign * np.sin(p["vent_tilt"])
        inside = ((ct * du + st * dv) / a[0]) ** 2 + ((-st * du + ct * dv) / a[1]) ** 2 \
            + ((w - p["vent_z"]) / a[2]) ** 2 < 1
        t[inside] = 3
    if lesion:
        du, dv, dw = u - p["tumour"][0], v - p["tumour"][1], w - p["tumour"][2]
        dist = np.sqrt(du ** 2 + dv ** 2 + dw ** 2)
        flat = np.sqrt(du ** 2 + dv ** 2) / np.maximum(dist, 1e-9)     # cos(elevation): lumps fade at the poles
        r = dist / (1 + p["lump_amp"] * np.sin(p["lump_k"] * np.arctan2(dv, du) + p["lump_phase"]) * flat)
        for code, radius in ((7, p["r_oedema"]), (8, p["r_enh"]), (6, p["r_core"])):
            t[r < radius] = code
    return t


def phantom_volume(subject: int, seed: int = 0, side: int = 128, depth: int = 16, *, lesion_rate: float = 0.5,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``phantom_volume(3, seed=0, side=128, depth=16)`` -> (images float32 [depth, 4, side, side] raw
    intensities, background 0; seg uint8 [depth, side, side] BraTS labels; tissue uint8 [depth, side, side]
    codes of :data:`TISSUES`). A stand-in for one BraTS subject's stack, not real anatomy.

    The anatomy depends on (seed, subject) only, not on ``side`` or ``depth``: a finer grid draws the same head.
    """
    rng = np.random.default_rng([seed, subject])
    p = _anatomy(rng)
    tissue = _tissue(p, side, depth, p["draw"] < lesion_rate)
    g = (np.arange(side) + 0.5) / side * 2 - 1
    field = 1 + p["bias"] * (np.cos(p["bias_dir"]) * g[None, :] + np.sin(p["bias_dir"]) * g[:, None])  # [S, S]
    table = p["contrast"] * p["gain"][:, None]
    table[:, 0] = 0
    images = table[:, tissue].transpose(1, 0, 2, 3) * field
    images += _NOISE * p["gain"][:, None, None] * rng.standard_normal(images.shape)
    head = (tissue > 0)[:, None]
    images = np.where(head, np.maximum(images, _FLOOR), 0.0).astype(np.float32)
    return images, SEG_OF_TISSUE[tissue], tissue


def phantom_dataset(n_subjects: int = 20, size: int = 64, n_slices: int = 16, seed: int = 0, *, first: int = 0,
                    lesion_rate: float = 0.5, antialias: int = 2, min_brain: float = 0.1,
                    min_lesion_px: int = 10) -> MRISlices:
    """``phantom_dataset(20, size=64, n_slices=16, seed=0)``: subjects ``first .. first + n_subjects - 1`` of
    the phantom as :class:`~circuitnb.data.mri.brats.MRISlices` (a stand-in for BraTS2020, not real anatomy).

    Each subject is drawn at ``size * antialias`` pixels, ``n_slices`` deep, and sliced as BraTS is; its ids are
    ``phantom_NNN``. ``phantom_dataset(1, first=k)`` gives subject k's slices bit for bit as in any larger draw.
    """
    check_slicing(size, min_brain, min_lesion_px)
    for name, value, least in (("n_subjects", n_subjects, 1), ("n_slices", n_slices, 1), ("first", first, 0),
                               ("antialias", antialias, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise MRIDataError(f"parameter {name!r} = {value!r}: must be an integer >= {least}")
    if isinstance(lesion_rate, bool) or not isinstance(lesion_rate, (int, float)) or not 0 <= lesion_rate <= 1:
        raise MRIDataError(f"parameter 'lesion_rate' = {lesion_rate!r}: must be a probability in [0, 1]")
    parts = []
    for k in range(first, first + n_subjects):
        images, seg, _ = phantom_volume(k, seed, size * antialias, n_slices, lesion_rate=lesion_rate)
        parts.append(slice_volume(images, seg, f"phantom_{k:03d}", size, min_brain=min_brain,
                                  min_lesion_px=min_lesion_px))
    return kept(MRISlices.concat(parts, "phantom", size), min_brain, min_lesion_px)
