"""Images for a model of your own: a folder of image files, or the book's natural faces, at the model's size.

    x0, note = folder_images("~/my_images", n=100, image_size=32)    # [N, 3, 32, 32] in [-1, 1]
    x0, note = to_channels(x0, 1)                                    # a 1-channel model: greyscale

Files are read in name order (``.png``, ``.jpg``, ...; unreadable ones are skipped and named, as CelebA's),
centre-cropped to a square and resized with Lanczos, as the book's own faces. A model whose channel count
is not 3 gets the images converted, and the returned note says how, for the page.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from circuitnb.data.celeba import DataError, _load_image, warn_skipped

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
LUMA = np.array([299, 587, 114], np.float32) / 1000   # ITU-R BT.601 weights (per mille), PIL's own "L" conversion


def folder_images(folder, n: int, image_size: int) -> tuple[np.ndarray, str]:
    """The first ``n`` readable images of ``folder`` (name order), float32 ``[N, 3, S, S]`` in [-1, 1]."""
    root = Path(str(folder)).expanduser()
    if not root.is_dir():
        raise DataError(f"parameter 'images_dir' = {str(folder)!r} is not a folder of images")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    images, skipped = [], []
    for path in files:
        if len(images) == n:
            break
        try:
            images.append(_load_image(path, image_size))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as err:          # damaged or foreign files, as for CelebA
            skipped.append(f"{path.name} ({err if 'pixels' in str(err) else type(err).__name__})")
    warn_skipped(skipped)
    if len(images) < 2:
        raise DataError(f"parameter 'images_dir' = {str(folder)!r}: {len(images)} readable image(s) "
                        f"({', '.join(SUFFIXES)}); the analyses need at least 2")
    note = f"{len(images)} images of {root} (name order), centre-cropped and resized to {image_size}px"
    return np.stack(images), note


def to_channels(x: np.ndarray, channels: int) -> tuple[np.ndarray, str]:
    """RGB images ``[N, 3, S, S]`` as ``channels``-channel ones, and a note saying how ('' for 3 channels).

    1 channel: luma (BT.601). Any other count: the luma repeated, since there is no colour meaning to give
    a 2nd or 4th channel; the note says so, as the model may expect something else there.
    """
    if channels == 3:
        return x, ""
    grey = np.tensordot(LUMA, x, axes=([0], [1])).astype(np.float32)[:, None]     # [N, 1, S, S]
    if channels == 1:
        return grey, "converted to greyscale (BT.601 luma), the model taking 1 channel"
    return (np.repeat(grey, channels, axis=1),
            f"the model takes {channels} channels: each is the image's greyscale (BT.601 luma), repeated")
