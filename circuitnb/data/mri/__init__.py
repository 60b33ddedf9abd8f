"""Part V's data (Bayesian attention VAE for anomaly detection): axial brain-MRI slices, healthy and lesioned.

    d = mri_slices(size=64, seed=0)                       # the phantom stand-in: no folder given
    d = mri_slices("MICCAI_BraTS2020_TrainingData", size=64)   # BraTS2020, when a user has it
    d.images, d.masks, d.lesion                           # float32 [N, 4, H, W] in [-1, 1]; uint8 [N, H, W]; bool [N]
    healthy = d.take(~d.lesion)
    print(d.summary())                                    # counts, dropped slices, skipped subjects and why

Both sources return :class:`MRISlices`, channels :data:`MODALITIES` (flair, t1, t1ce, t2), masks in BraTS
labels (:data:`LABELS`: 0, 1 necrotic core, 2 oedema, 4 enhancing), one row per axial slice with its subject
and slice index:

* :func:`phantom_dataset` (:mod:`~circuitnb.data.mri.phantom`), a procedural stand-in, not real anatomy:
  skull, grey and white matter, ventricles and planted tumours in the four contrasts, per-subject variation,
  deterministic per seed and per subject;
* :func:`load_brats` (:mod:`~circuitnb.data.mri.brats`), the official BraTS2020 folder layout read with
  nibabel. Bad subjects are skipped and named in ``skipped``; none usable is an :class:`MRIDataError`.

Both go through one path (:func:`slice_volume`): per-volume percentile normalisation to [-1, 1], area-averaged
resizing, and one rule splitting healthy from lesion slices (stated in :mod:`~circuitnb.data.mri.brats`).
"""
from __future__ import annotations

from pathlib import Path

from circuitnb.data.mri.brats import (
    CLIP_PERCENTILES,
    LABELS,
    MODALITIES,
    MRIDataError,
    MRISlices,
    load_brats,
    normalise,
    slice_volume,
)
from circuitnb.data.mri.phantom import CONTRAST, SEG_OF_TISSUE, TISSUES, phantom_dataset, phantom_volume

__all__ = ["MRISlices", "MRIDataError", "mri_slices", "phantom_dataset", "phantom_volume", "load_brats",
           "slice_volume", "normalise", "MODALITIES", "LABELS", "CLIP_PERCENTILES", "TISSUES", "CONTRAST",
           "SEG_OF_TISSUE"]


def mri_slices(path: str | Path | None = None, size: int = 64, *, seed: int = 0, n_subjects: int | None = None,
               n_slices: int = 16, min_brain: float = 0.1, min_lesion_px: int = 10) -> MRISlices:
    """``mri_slices(folder, size=64)``: BraTS2020 from ``folder``; with no folder, the phantom stand-in.

    The phantom draws ``n_subjects`` (20 when None) subjects of ``n_slices`` slices with ``seed``; BraTS reads
    every usable subject (or the first ``n_subjects``) and all its slices, and ignores ``seed`` and ``n_slices``.
    """
    if path is None:
        return phantom_dataset(20 if n_subjects is None else n_subjects, size, n_slices, seed,
                               min_brain=min_brain, min_lesion_px=min_lesion_px)
    return load_brats(path, size, n_subjects=n_subjects, min_brain=min_brain, min_lesion_px=min_lesion_px)
