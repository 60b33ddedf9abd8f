"""CelebA in its official layout, and the LFW stand-in when there is none (paper §3.1).

    faces = load_celeba("/data/celeba", n=2000, image_size=32)
    faces.images, faces.names, faces.skipped, faces.attributes

The folder holds ``img_align_celeba/*.jpg`` (178x218) and optionally
``list_attr_celeba.txt`` (a count line, a header of 40 names, then one +1/-1
row per image; it may list only some of the images). Images are centre-cropped
to 178x178, the usual crop for the aligned release, then resized with a
Lanczos filter. Files that cannot be decoded, that exceed Pillow's
decompression-bomb limit, or that are too small to hold a face are skipped and
named in one warning (and in ``NaturalFaces.skipped``). A malformed attribute
file (a folder, non-UTF-8 bytes, values other than 1/-1, a repeated row) is a
:class:`DataError` naming the file and line.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from circuitnb.core.errors import UserError

# CelebA attributes with a counterpart in the synthetic generator, mapped to the
# probability that the synthetic law gives them (see synthetic.CORRELATIONS).
# They pick the CelebA images whose attribute mix matches the synthetic set's.
_SYNTHETIC_MARGINALS = {"Male": 0.5, "Young": 0.7, "Smiling": 0.475, "Eyeglasses": 0.24}


@dataclass
class NaturalFaces:
    images: np.ndarray                 # float32 [N, 3, H, W] in [-1, 1]
    names: list[str]                   # file names (CelebA) or "lfw_<k>" (stand-in)
    source: str                        # "celeba" or "lfw"
    notice: str = ""                   # shown in the book when the stand-in was used
    attributes: pd.DataFrame | None = None   # rows for the images that have them, indexed by name
    skipped: list[str] = field(default_factory=list)   # unreadable files, never silent

    def __len__(self) -> int:
        return len(self.images)


class DataError(UserError, ValueError):
    """The dataset location or contents are unusable."""


def _attribute_text(path: Path) -> str:
    """The attribute file's text; a folder, unreadable file or non-UTF-8 bytes are named errors."""
    if path.is_dir():
        raise DataError(f"{path} is a folder; expected CelebA's attribute text file (or nothing there)")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read the attribute file ({err.strerror or err})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: byte {raw[err.start]:#04x} at offset {err.start} is not UTF-8 text; "
                        "expected CelebA's plain-text attribute file") from None


def read_attributes(path: Path) -> pd.DataFrame:
    """Parse ``list_attr_celeba.txt`` into a frame of +1/-1 indexed by file name.

        attrs = read_attributes(root / "list_attr_celeba.txt")   # DataError naming file:line if malformed

    Every value must be 1 or -1 and every file name may have one row only: anything else is
    a damaged or foreign file, and guessing would silently skew the attribute matching.
    """
    path = Path(path)
    lines = _attribute_text(path).splitlines()
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and a header line")
    header = lines[1].split()
    rows: dict[str, list[int]] = {}
    first_line: dict[str, int] = {}
    for ln, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(header) + 1:
            raise DataError(f"{path}:{ln}: {len(parts) - 1} values for {len(header)} attributes")
        name = parts[0]
        if name in rows:
            raise DataError(f"{path}:{ln}: a second row for {name!r} (the first is on line {first_line[name]}); "
                            "each image may have one row")
        values = []
        for column, text in zip(header, parts[1:]):
            if text not in ("1", "-1"):
                raise DataError(f"{path}:{ln}: attribute {column!r} of {name!r} is {text!r}; allowed: 1 or -1")
            values.append(int(text))
        rows[name], first_line[name] = values, ln
    return pd.DataFrame.from_dict(rows, orient="index", columns=header)


class _TooSmall(ValueError):
    """An image too small to be a face at the training resolution (its message says why)."""


def _min_side(image_size: int) -> int:
    # Upsampling a face more than 4x gives a blur, not a face at the training resolution;
    # a 1x1 "image" is a placeholder or a damaged file. Such files are skipped and named.
    return max(2, image_size // 4)


def _load_image(path: Path, image_size: int) -> np.ndarray:
    # Pillow's decompression-bomb check raises (over 2x its limit) or warns (over 1x); both
    # mean the file is not a CelebA photo, so both skip it instead of stalling or aborting.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            w, h = im.size
            if min(w, h) < _min_side(image_size):
                raise _TooSmall(f"{w}x{h} pixels, below {_min_side(image_size)} on a side")
            im = im.convert("RGB")
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.LANCZOS)
            return np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1


def select_matching(attrs: pd.DataFrame, names: list[str], n: int, seed: int) -> list[str]:
    """Pick ``n`` of ``names``, preferring an attribute mix like the synthetic set's.

    Images with attribute rows are importance-weighted so that each marginal in
    ``_SYNTHETIC_MARGINALS`` moves towards the synthetic value (weights are the
    product of per-attribute ratios target/observed); images without rows keep
    weight 1. Sampling is without replacement, deterministic per ``seed``.
    """
    rng = np.random.default_rng([seed, 0xCE1])
    weights = np.ones(len(names))
    known = [i for i, nm in enumerate(names) if nm in attrs.index]
    if known:
        sub = attrs.loc[[names[i] for i in known]]
        w = np.ones(len(known))
        for col, target in _SYNTHETIC_MARGINALS.items():
            if col not in sub:
                continue
            pos = (sub[col].to_numpy() > 0)
            observed = pos.mean()
            if 0 < observed < 1:
                w *= np.where(pos, target / observed, (1 - target) / (1 - observed))
        weights[known] = w
    if n >= len(names):
        return list(names)
    idx = rng.choice(len(names), size=n, replace=False, p=weights / weights.sum())
    return [names[i] for i in sorted(idx)]


def celeba_plan(root: str | Path, n: int, seed: int = 0, match_attributes: bool = True
                ) -> tuple[Path, list[str], pd.DataFrame | None]:
    """The image folder, the file names in the order :func:`load_celeba` tries them (the ``n`` chosen, then
    spares that replace skipped files) and the attribute table (or None): everything but the decoding."""
    root = Path(root).expanduser()
    img_dir = root / "img_align_celeba"
    if not img_dir.is_dir():
        raise DataError(f"parameter 'celeba_root' (or $CIRCUITNB_CELEBA) = {str(root)!r}: no 'img_align_celeba' "
                        "folder there; expected CelebA's official layout")
    names = sorted(p.name for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not names:
        raise DataError(f"parameter 'celeba_root' = {str(root)!r}: 'img_align_celeba' holds no images")
    attr_file = root / "list_attr_celeba.txt"
    attrs = read_attributes(attr_file) if attr_file.exists() else None
    if match_attributes and attrs is not None:
        chosen = select_matching(attrs, names, n, seed)
        taken = set(chosen)
        return img_dir, chosen + [nm for nm in names if nm not in taken], attrs
    return img_dir, names, attrs


def warn_skipped(skipped: list[str]) -> None:
    if skipped:
        warnings.warn(f"CelebA: skipped {len(skipped)} unreadable or unusable file(s): {', '.join(skipped[:10])}"
                      + (" ..." if len(skipped) > 10 else ""), stacklevel=3)


def load_celeba(root: str | Path, n: int, image_size: int, seed: int = 0,
                match_attributes: bool = True, progress: bool = False) -> NaturalFaces:
    """Load up to ``n`` CelebA images from ``root`` (official layout); ``.skipped`` names the files passed over."""
    img_dir, candidates, attrs = celeba_plan(root, n, seed, match_attributes)
    from tqdm.auto import tqdm
    images, kept, skipped = [], [], []
    for nm in tqdm(candidates, desc="CelebA", disable=not progress, total=min(n, len(candidates))):
        if len(kept) == n:
            break
        try:
            images.append(_load_image(img_dir / nm, image_size))
            kept.append(nm)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as err:   # what PIL raises for damaged or foreign files
            reason = str(err) if isinstance(err, _TooSmall) else type(err).__name__
            skipped.append(f"{nm} ({reason})")
    warn_skipped(skipped)
    if not kept:
        raise DataError(f"parameter 'celeba_root' = {str(Path(root).expanduser())!r}: no readable images")
    sub_attrs = attrs.loc[[k for k in kept if k in attrs.index]] if attrs is not None else None
    return NaturalFaces(images=np.stack(images), names=kept, source="celeba",
                        attributes=sub_attrs, skipped=skipped)


LFW_NOTICE = ("No CelebA folder was given (parameter 'celeba_root' or $CIRCUITNB_CELEBA): the natural "
              "dataset is the 100 real LFW faces that scikit-image ships (25x25 greyscale, upsampled), "
              "a stand-in, not the paper's data.")


def load_lfw(n: int, image_size: int) -> NaturalFaces:
    """The stand-in natural dataset: scikit-image's 100 LFW faces (greyscale, 25x25)."""
    from skimage.data import lfw_subset
    faces = lfw_subset()[:100]       # the first 100 are faces, the rest are not
    images = []
    for face in faces[:n]:
        im = Image.fromarray((face * 255).astype(np.uint8)).resize((image_size, image_size), Image.LANCZOS)
        grey = np.asarray(im, dtype=np.float32) / 127.5 - 1
        images.append(np.repeat(grey[None], 3, axis=0))
    warnings.warn(LFW_NOTICE, stacklevel=2)
    return NaturalFaces(images=np.stack(images), names=[f"lfw_{k}" for k in range(len(images))],
                        source="lfw", notice=LFW_NOTICE)
