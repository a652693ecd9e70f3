"""Sub-image (patch) positions for training databases, following BasicSR's ``extract_subimages``.

Along each dimension, crops start at ``0, step, 2*step, ...`` while they fit; if the last one
leaves more than ``thresh_size`` pixels uncovered, one more crop is placed flush with the far
edge. Crops are numbered from 1 row by row (``{image}_s001``, ``{image}_s002``, ...). BasicSR's
DIV2K recipe uses 480-pixel crops, step 240 and ``thresh_size`` 0 for HR, and ``480/k``, ``240/k``
for the x``k`` LR images, so that LR crop ``i`` covers exactly HR crop ``i``.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError


def crop_starts(length: int, crop_size: int, step: int, thresh_size: int = 0) -> list[int]:
    """Start offsets of the crops along one dimension.

    Args:
        length: image size along the dimension.
        crop_size: crop size along the dimension.
        step: distance between consecutive crops.
        thresh_size: add a last crop flush with the edge when more than this many pixels are left.

    Raises:
        DataError: the image is smaller than a crop.
    """
    if length < crop_size:
        raise DataError(f'size {length} is smaller than the crop size {crop_size}')
    starts = list(range(0, length - crop_size + 1, step))
    if length - (starts[-1] + crop_size) > thresh_size:
        starts.append(length - crop_size)
    return starts


def crop_grid(height: int, width: int, crop_size: int, step: int, thresh_size: int = 0
              ) -> list[tuple[int, int]]:
    """``(top, left)`` of every crop, in naming order (row by row).

    Args:
        height: image height.
        width: image width.
        crop_size: side of the square crops.
        step: distance between consecutive crops.
        thresh_size: see :func:`crop_starts`.
    """
    rows = crop_starts(height, crop_size, step, thresh_size)
    cols = crop_starts(width, crop_size, step, thresh_size)
    return [(top, left) for top in rows for left in cols]


def subimage_key(image_name: str, index: int) -> str:
    """Key of the ``index``-th (1-based) sub-image of ``image_name``: ``0001_s001``."""
    return f'{image_name}_s{index:03d}'


def scaled_crop(crop_size: int, step: int, scale: int) -> tuple[int, int]:
    """LR crop size and step for scale ``scale``.

    Raises:
        DataError: ``crop_size`` or ``step`` is not divisible by ``scale``, so LR crops could not
            cover HR crops exactly.
    """
    if crop_size % scale or step % scale:
        raise DataError(f'crop size {crop_size} and step {step} must both be divisible by the scale {scale} '
                        f'(LR crops are {crop_size}/{scale} pixels with step {step}/{scale})')
    return crop_size // scale, step // scale


def extract(image: np.ndarray, positions: list[tuple[int, int]], crop_size: int) -> list[np.ndarray]:
    """The square crops of ``image`` at ``positions`` (contiguous copies)."""
    return [np.ascontiguousarray(image[top:top + crop_size, left:left + crop_size]) for top, left in positions]
