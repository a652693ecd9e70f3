"""Data transforms for MMagic pipelines."""
from __future__ import annotations

import os

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get_file_backend

from mmagic.datasets.transforms import LoadImageFromFile
from mmagic.registry import TRANSFORMS

from ..data.raw_store import decode_raw
from ..errors import ConfigError
from ._registry import register_once


class CropGTToInput(BaseTransform):
    """Crop the ground truth to exactly ``scale`` times the input (top-left corner kept).

    Benchmark folders in the EDSR layout store the full HR image while the bicubic LR image is
    ``floor(HR / scale)``; PSNR/SSIM need both at the same size and MMagic's metrics do not crop,
    so the GT is cropped here, as BasicSR's paired dataset does. A GT already at the right size is
    left untouched.

    Args:
        scale: Upscaling factor. ``None`` reads ``results['scale']`` (set by ``SetValues``).
        lq_key: Key of the low-resolution input.
        gt_key: Key of the ground truth.

    Required keys: ``lq_key``, ``gt_key`` (and ``scale`` when the argument is None).
    Modified keys: ``gt_key``.
    """

    def __init__(self, scale: int | None = None, lq_key: str = 'img', gt_key: str = 'gt') -> None:
        self.scale = scale
        self.lq_key = lq_key
        self.gt_key = gt_key

    def transform(self, results: dict) -> dict:
        scale = self.scale if self.scale is not None else results.get('scale')
        if scale is None:
            raise KeyError('CropGTToInput needs a scale: pass scale= or set results["scale"] with SetValues')
        lq, gt = results[self.lq_key], results[self.gt_key]
        height, width = lq.shape[0] * scale, lq.shape[1] * scale
        if gt.shape[0] < height or gt.shape[1] < width:
            path = results.get(f'{self.gt_key}_path', '<unknown>')
            raise ValueError(f'{path}: GT {gt.shape[:2]} is smaller than {scale} x input {lq.shape[:2]}')
        results[self.gt_key] = gt[:height, :width, ...]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale={self.scale}, lq_key={self.lq_key!r}, gt_key={self.gt_key!r})'


class LoadImageFromSharedFile(LoadImageFromFile):
    """``LoadImageFromFile`` whose file backend is shared by every step with the same ``backend_args``.

    mmengine's ``LmdbBackend`` opens its database on first use, and LMDB refuses to open one database
    twice in a process. Multi-scale training concatenates one DIV2K dataset per scale, all reading
    the same HR LMDB in the same dataloader worker: with this step they share one backend (hence one
    LMDB handle per process; each forked worker still opens its own). Arguments are
    ``LoadImageFromFile``'s.
    """

    def __init__(self, key: str, **kwargs) -> None:
        super().__init__(key, **kwargs)
        if self.backend_args is not None:
            backend_args = dict(self.backend_args)
            if 'db_path' in backend_args:
                # One handle per database, however its path is spelt (and whatever the working directory).
                backend_args['db_path'] = os.path.abspath(backend_args['db_path'])
            self.file_backend = get_file_backend(backend_args=backend_args, enable_singleton=True)


class LoadImageFromRawLMDB(LoadImageFromSharedFile):
    """``LoadImageFromFile`` for raw-pixel LMDBs (``lesrcnn-prepare-div2k --storage raw``): no decoding.

    Takes ``LoadImageFromFile``'s arguments, with ``backend_args=dict(backend='lmdb', db_path=...)``
    naming a ``*_raw.lmdb`` database, and gives the same image as ``LoadImageFromFile`` on the PNG
    database it was made from (``color_type='color'``; ``channel_order`` 'bgr' or 'rgb';
    ``imdecode_backend`` is not used). The image is a writable copy, as later steps flip in place.
    Like ``LoadImageFromSharedFile``, steps naming the same database share one handle per process.
    """

    def __init__(self, key: str, **kwargs) -> None:
        super().__init__(key, **kwargs)
        if (self.backend_args or {}).get('backend') != 'lmdb':
            raise ConfigError(f"{type(self).__name__} reads raw-pixel LMDBs: give backend_args=dict(backend='lmdb', "
                              f'db_path=...), got {self.backend_args}')
        if self.color_type != 'color' or self.channel_order not in ('bgr', 'rgb'):
            raise ConfigError(f"{type(self).__name__} stores 3-channel images: color_type must be 'color' and "
                              f"channel_order 'bgr' or 'rgb', got {self.color_type!r} and {self.channel_order!r}")

    def _load_image(self, filename: str) -> np.ndarray:
        key = os.path.splitext(os.path.basename(filename))[0]  # the LMDB key, as LoadImageFromFile looks it up
        image = decode_raw(self.file_backend.get(key), f'{self.backend_args["db_path"]}[{key}]')
        # Raw values are BGR, as cv2 decodes PNGs; both branches copy the read-only view.
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if self.channel_order == 'rgb' else image.copy()


register_once(TRANSFORMS, CropGTToInput)
register_once(TRANSFORMS, LoadImageFromSharedFile)
register_once(TRANSFORMS, LoadImageFromRawLMDB)
