"""BraTS2020 volumes from the official folder layout, read as axial slices, and the type every MRI source returns.

    d = load_brats("MICCAI_BraTS2020_TrainingData", size=64)   # MRISlices: images float32 [N, 4, 64, 64] in [-1, 1]
    d.skipped                                  # {"BraTS20_Training_355": "no seg file ...", ...}: shown, not raised
    print(d.summary())

BraTS2020 (Menze et al. 2015; Bakas et al. 2017) cannot be downloaded here; the user points to a copy laid out
as ``<folder>/BraTS20_Training_NNN/BraTS20_Training_NNN_{flair,t1,t1ce,t2,seg}.nii.gz`` (``.nii`` is read too):
co-registered, skull-stripped 3-D volumes (240 x 240 x 155 at 1 mm), ``seg`` in BraTS labels 0 background,
1 necrotic / non-enhancing core, 2 oedema, 4 enhancing tumour. Subjects are read one at a time, so memory
stays near one subject's volumes (~180 MB) plus the slices kept.

The readings, shared with the phantom (:func:`slice_volume`):

* Foreground: voxels where any of the four modalities is non-zero (BraTS is skull-stripped; its background is 0).
* Intensity, per volume and modality: clip to the 0.5th and 99.5th percentiles of the foreground voxels and map
  that range linearly onto [-1, 1]; background is -1. The percentiles come from the whole volume, so a slice
  reads the same whichever slices are kept.
* Axial slices: volume axis 2; image rows are axis 1, columns axis 0 (``vol[:, :, k].T``, nose up for BraTS'
  orientation). Each slice is resized to ``size`` x ``size`` by area averaging (each pixel the mean of the area
  it covers); a mask pixel takes the label covering most of its area, ties going to the tumour (4, 1, 2, then
  0) so that rounding does not erode a lesion.
* A slice is kept when its foreground covers at least ``min_brain`` of its area (native resolution); else it is
  dropped as ``little_brain``. A kept slice is *healthy* when its native seg has no label at all, a *lesion*
  slice when its resized mask has at least ``min_lesion_px`` labelled pixels; a lesion too small for that is
  neither and is dropped as ``small_lesion``.

A subject with a missing modality, an unreadable file (truncated, not gzip), a volume that is not 3-D, volumes of
different shapes, non-finite values, a modality constant over the brain, or seg labels other than 0, 1, 2, 4 is
skipped and named in ``skipped`` with the reason. A folder with no usable subject raises :class:`MRIDataError`
(one line, exit status 2).
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from circuitnb.data.celeba import DataError
from circuitnb.data.sae.files import area_resize

MODALITIES = ("flair", "t1", "t1ce", "t2")      # channel order of MRISlices.images
LABELS = (0, 1, 2, 4)                           # BraTS: background, necrotic/non-enhancing core, oedema, enhancing
CLIP_PERCENTILES = (0.5, 99.5)                  # of the foreground voxels, per volume and modality
_TIE_ORDER = (4, 1, 2, 0)                       # who wins a pixel split evenly between labels
_SUBJECT = re.compile(r"BraTS20_[A-Za-z]+_\d+")
_CHUNK = 32                                     # slices resized at once: 60 MB of float64 at 240 px
EXPECTED = ("subfolders BraTS20_Training_NNN each holding BraTS20_Training_NNN_{flair,t1,t1ce,t2,seg}.nii.gz "
            "(or .nii): 3-D volumes of one shape, seg labelled 0, 1, 2, 4")


class MRIDataError(DataError):
    """A Part V data folder or parameter is unusable (one line: the folder or parameter and what is accepted)."""


@dataclass
class MRISlices:
    """Axial MRI slices with BraTS labels: what :func:`load_brats` and the phantom return."""
    images: np.ndarray          # float32 [N, 4, H, W] in [-1, 1]; channels MODALITIES; background -1
    masks: np.ndarray           # uint8 [N, H, W]: BraTS labels 0, 1, 2, 4 per pixel
    lesion: np.ndarray          # bool [N]: a lesion slice; False: healthy (no label anywhere in the native slice)
    subject: np.ndarray         # str [N]: the subject's folder name, or phantom_NNN
    slice_index: np.ndarray     # int64 [N]: the slice's axial index in its subject's volume
    source: str                 # "phantom" or the BraTS folder read
    skipped: dict[str, str] = field(default_factory=dict)      # subject -> why it was not read
    dropped: dict[str, int] = field(default_factory=lambda: {"little_brain": 0, "small_lesion": 0})

    def __len__(self) -> int:
        return len(self.images)

    def take(self, rows) -> MRISlices:
        """``d.take(~d.lesion)``: the slices ``rows`` selects (a mask or indices); the reports stay whole."""
        return MRISlices(self.images[rows], self.masks[rows], self.lesion[rows], self.subject[rows],
                         self.slice_index[rows], self.source, dict(self.skipped), dict(self.dropped))

    def summary(self) -> str:
        """What was read, in lines a notebook or the command line can print."""
        lines = [f"{self.source}: {len(np.unique(self.subject))} subjects, {len(self)} slices "
                 f"({int(self.lesion.sum())} lesion, {int((~self.lesion).sum())} healthy); dropped "
                 f"{self.dropped['little_brain']} with little brain, {self.dropped['small_lesion']} with a lesion "
                 "too small to count"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} subjects:")
            lines += [f"  {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)

    @classmethod
    def concat(cls, parts: list[MRISlices], source: str, size: int, skipped: dict[str, str] | None = None,
               ) -> MRISlices:
        """Join per-subject slices in order, adding up their ``dropped`` counts."""
        if not parts:
            return cls(np.zeros((0, 4, size, size), np.float32), np.zeros((0, size, size), np.uint8),
                       np.zeros(0, bool), np.zeros(0, str), np.zeros(0, np.int64), source, dict(skipped or {}))
        dropped = {k: sum(p.dropped[k] for p in parts) for k in parts[0].dropped}
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("images", "masks", "lesion", "subject", "slice_index")), source, dict(skipped or {}), dropped)


def check_slicing(size: int, min_brain: float, min_lesion_px: int, slice_step: int = 1) -> None:
    """Raise :class:`MRIDataError` naming the first parameter of the slice rules out of range."""
    for name, value, ok, allowed in (
            ("size", size, isinstance(size, (int, np.integer)) and size >= 4, "an integer >= 4 pixels"),
            ("min_brain", min_brain, isinstance(min_brain, (int, float)) and 0 <= min_brain <= 1,
             "a fraction of the slice in [0, 1]"),
            ("min_lesion_px", min_lesion_px, isinstance(min_lesion_px, (int, np.integer)) and min_lesion_px >= 1,
             "an integer >= 1 pixels"),
            ("slice_step", slice_step, isinstance(slice_step, (int, np.integer)) and slice_step >= 1,
             "an integer >= 1")):
        if not ok or isinstance(value, bool):
            raise MRIDataError(f"parameter {name!r} = {value!r}: must be {allowed}")


def normalise(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[D, 4, H, W] raw intensities -> (float32 [D, 4, H, W] in [-1, 1], foreground bool [D, H, W]).

    Percentile clipping per modality over the foreground (module docstring); ValueError when a modality is
    constant there or the volume has no foreground.
    """
    fg = (images != 0).any(1)
    if not fg.any():
        raise ValueError("every modality is zero everywhere")
    out = np.full(images.shape, -1.0, np.float32)
    for m, name in enumerate(MODALITIES):
        lo, hi = np.percentile(images[:, m][fg], CLIP_PERCENTILES)
        if not hi > lo:
            raise ValueError(f"{name} is constant over the brain ({lo:g})")
        scaled = np.clip((images[:, m] - lo) / (hi - lo), 0, 1) * 2 - 1
        out[:, m] = np.where(fg, scaled, -1.0)
    return out, fg


def _resize_labels(seg: np.ndarray, size: int) -> np.ndarray:
    """[K, H, W] labels -> uint8 [K, size, size]: the label covering most of each pixel, ties to the tumour."""
    cover = np.stack([area_resize((seg == lab)[:, None], size)[:, 0] for lab in _TIE_ORDER])
    # Rounded so that equal shares stay equal whatever the float sums, and argmax keeps the tie order.
    return np.asarray(_TIE_ORDER, np.uint8)[np.argmax(np.round(cover, 5), axis=0)]


def slice_volume(images: np.ndarray, seg: np.ndarray, subject: str, size: int, *, min_brain: float = 0.1,
                 min_lesion_px: int = 10, slice_step: int = 1) -> MRISlices:
    """``slice_volume(images, seg, "BraTS20_Training_001", 64)``: one subject's axial stack, normalised, resized
    and split into healthy and lesion slices by the rules of the module docstring.

    images: [D, 4, H, W] raw intensities, background 0, channels MODALITIES; seg: [D, H, W] BraTS labels.
    ValueError (the caller's skip reason) when :func:`normalise` finds the volume unusable.
    """
    norm, fg = normalise(images)
    idx = np.arange(0, len(images), slice_step)
    brainy = idx[fg[idx].mean((1, 2)) >= min_brain]
    x = np.empty((len(brainy), 4, size, size), np.float32)
    for a in range(0, len(brainy), _CHUNK):
        x[a:a + _CHUNK] = area_resize(norm[brainy[a:a + _CHUNK]], size)
    masks = _resize_labels(seg[brainy], size)
    touched = (seg[brainy] > 0).any((1, 2))
    lesion = touched & ((masks > 0).sum((1, 2)) >= min_lesion_px)
    keep = ~touched | lesion
    return MRISlices(np.clip(x[keep], -1, 1), masks[keep], lesion[keep], np.full(int(keep.sum()), subject),
                     brainy[keep].astype(np.int64), "", {},
                     {"little_brain": len(idx) - len(brainy), "small_lesion": int((~keep).sum())})


class _Skip(Exception):
    """A subject that cannot be read; the message is the reason shown in ``MRISlices.skipped``."""


def _read_subject(folder: Path, nib) -> tuple[np.ndarray, np.ndarray]:
    """One subject's files -> (images float32 [D, 4, H, W], seg uint8 [D, H, W]) in slice-first order."""
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError
    read_errors = (ImageFileError, HeaderDataError, OSError, EOFError, zlib.error, ValueError)
    files = {}
    for key in (*MODALITIES, "seg"):
        found = [folder / f"{folder.name}_{key}{ext}" for ext in (".nii.gz", ".nii")]
        files[key] = next((f for f in found if f.is_file()), None)
    missing = [k for k, f in files.items() if f is None]
    if missing:
        raise _Skip(f"no {'/'.join(missing)} file (expected {folder.name}_{missing[0]}.nii.gz)")
    vols, shape = {}, None
    for key, f in files.items():
        try:
            img = nib.load(f)
            dims = tuple(img.shape)
            while len(dims) > 3 and dims[-1] == 1:       # a trailing axis of one (time, channel) is still 3-D
                dims = dims[:-1]
            if len(dims) != 3:
                raise _Skip(f"{f.name} is {len(dims)}-D {list(img.shape)}, not a 3-D volume")
            if shape is not None and dims != shape:
                raise _Skip(f"shapes differ: {files['flair'].name} {list(shape)}, {f.name} {list(dims)}")
            shape = dims
            vols[key] = np.asarray(img.get_fdata(dtype=np.float32)).reshape(dims)
        except read_errors as err:
            why = " ".join(str(err).split())
            raise _Skip(f"{f.name} is unreadable (truncated, not gzip or not NIfTI: {why})") from err
        if not np.isfinite(vols[key]).all():
            raise _Skip(f"{f.name} holds NaN or infinite values")
    seg = vols.pop("seg")
    labels = np.unique(seg)
    if not np.isin(labels, LABELS).all():
        raise _Skip(f"{files['seg'].name} holds labels {[float(v) for v in labels if v not in LABELS]}, "
                    f"not only BraTS' {list(LABELS)}")
    images = np.stack([vols[m] for m in MODALITIES]).transpose(3, 0, 2, 1)   # [D, 4, rows (axis 1), cols (axis 0)]
    return np.ascontiguousarray(images), np.ascontiguousarray(seg.astype(np.uint8).transpose(2, 1, 0))


def _subject_folders(p: Path) -> list[Path]:
    subjects = sorted(d for d in p.iterdir() if d.is_dir() and _SUBJECT.fullmatch(d.name))
    if not subjects:
        nested = [d.name for d in sorted(p.iterdir()) if d.is_dir()
                  and any(_SUBJECT.fullmatch(s.name) for s in d.iterdir())]
        hint = f" (they are one level down, in {nested[0]!r})" if nested else ""
        raise MRIDataError(f"BraTS folder '{p}': no subject folders{hint}; expected {EXPECTED}")
    return subjects


def load_brats(path: str | Path, size: int = 64, *, n_subjects: int | None = None, slice_step: int = 1,
               min_brain: float = 0.1, min_lesion_px: int = 10) -> MRISlices:
    """``load_brats(folder, size=64)`` -> MRISlices of every usable subject, in folder-name order.

    ``n_subjects`` stops after that many usable subjects; ``slice_step`` keeps axial slices 0, k, 2k, ...
    Unusable subjects are named in ``skipped``; none usable is an :class:`MRIDataError`.
    """
    p = Path(path).expanduser()
    if not p.is_dir():
        raise MRIDataError(f"BraTS folder '{p}': {'not found' if not p.exists() else 'not a folder'}; "
                           f"expected a folder of {EXPECTED}")
    check_slicing(size, min_brain, min_lesion_px, slice_step)
    if n_subjects is not None and not (isinstance(n_subjects, (int, np.integer)) and n_subjects >= 1):
        raise MRIDataError(f"parameter 'n_subjects' = {n_subjects!r}: must be an integer >= 1 or None (all)")
    try:  # only this loader needs nibabel, so the package imports without it
        import nibabel as nib
    except ImportError as err:
        raise MRIDataError(f"reading the BraTS folder '{p}' needs the nibabel package: pip install nibabel") from err
    parts, skipped = [], {}
    for folder in _subject_folders(p):
        if n_subjects is not None and len(parts) == n_subjects:
            break
        try:
            images, seg = _read_subject(folder, nib)
            parts.append(slice_volume(images, seg, folder.name, size, min_brain=min_brain,
                                      min_lesion_px=min_lesion_px, slice_step=slice_step))
        except _Skip as why:
            skipped[folder.name] = str(why)
        except ValueError as err:                      # normalise(): a constant or empty volume
            skipped[folder.name] = str(err)
    if not parts:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise MRIDataError(f"BraTS folder '{p}': no usable subject ({len(skipped)} skipped: {reasons}); "
                           f"expected {EXPECTED}")
    return kept(MRISlices.concat(parts, str(p), size, skipped), min_brain, min_lesion_px)


def kept(d: MRISlices, min_brain: float, min_lesion_px: int) -> MRISlices:
    """``d`` itself, or an :class:`MRIDataError` when the slice rules dropped every slice."""
    if len(d) == 0:
        raise MRIDataError(f"{d.source}: the subjects read gave no slice: "
                           f"{d.dropped['little_brain']} had brain on less than min_brain = {min_brain} of the "
                           f"slice, {d.dropped['small_lesion']} a lesion under min_lesion_px = {min_lesion_px}; "
                           "lower them")
    return d
