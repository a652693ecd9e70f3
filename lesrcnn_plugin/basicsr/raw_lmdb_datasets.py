"""BasicSR datasets reading raw-pixel LMDBs (``lesrcnn-prepare-div2k --storage raw``): no PNG decoding.

``RawLMDBPairedImageDataset`` is BasicSR's ``PairedImageDataset`` and
``RawLMDBMultiScalePairedImageDataset`` is the plugin's ``MultiScalePairedImageDataset``, with the
same options, reading ``*_sub_raw.lmdb`` databases (``io_backend: {type: lmdb}``) instead of the PNG
ones. Samples are identical: the stored pixels are those the PNG decodes to, and the random crops
and flips are drawn by BasicSR's own ``paired_random_crop`` and ``augment``, in the same order, from
images of the same shape, so a seed gives the same patches from either storage.

Where the time goes: the PNG datasets decode the whole HR and LR sub-images and convert them to
float32 before cropping a patch out of them; these read the pixels (one memory copy), crop the
``uint8`` images and convert only the patches. Float conversion is per pixel, so converting after
cropping gives the same values.
"""
from __future__ import annotations

import numpy as np

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, bgr2ycbcr, img2tensor
from torchvision.transforms.functional import normalize

from ..data.raw_store import decode_raw
from ..errors import ConfigError
from .multiscale_paired_dataset import MultiScalePairedImageDataset


def to_float(image: np.ndarray) -> np.ndarray:
    """``uint8`` pixels in [0, 1] as float32, exactly as ``basicsr.utils.imfrombytes(..., float32=True)``."""
    return image.astype(np.float32) / 255.


def _require_lmdb(opt: dict, dataset: str) -> None:
    if opt['io_backend']['type'] != 'lmdb':
        raise ConfigError(f'{dataset} reads raw-pixel LMDBs: io_backend type must be lmdb, '
                          f'got {opt["io_backend"]["type"]!r}')


class RawLMDBPairedImageDataset(PairedImageDataset):
    """``PairedImageDataset`` on raw-pixel LMDBs; options and samples as ``PairedImageDataset``'s.

    Args:
        opt (dict): ``PairedImageDataset``'s options, with ``dataroot_gt`` / ``dataroot_lq`` naming
            ``*_raw.lmdb`` databases and ``io_backend: {type: lmdb}``.
    """

    def __init__(self, opt: dict) -> None:
        _require_lmdb(opt, type(self).__name__)
        super().__init__(opt)

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        scale = self.opt['scale']
        gt_path, lq_path = self.paths[index]['gt_path'], self.paths[index]['lq_path']
        img_gt = decode_raw(self.file_client.get(gt_path, 'gt'), f'{self.gt_folder}[{gt_path}]')
        img_lq = decode_raw(self.file_client.get(lq_path, 'lq'), f'{self.lq_folder}[{lq_path}]')

        if self.opt['phase'] == 'train':
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.opt['gt_size'], scale, gt_path)
            img_gt, img_lq = augment([to_float(img_gt), to_float(img_lq)], self.opt['use_hflip'], self.opt['use_rot'])
        else:
            # Validation: the whole image, the GT cropped to LR x scale, as PairedImageDataset does.
            img_gt = to_float(img_gt[0:img_lq.shape[0] * scale, 0:img_lq.shape[1] * scale, :])
            img_lq = to_float(img_lq)
        if self.opt.get('color') == 'y':
            img_gt = bgr2ycbcr(img_gt, y_only=True)[..., None]
            img_lq = bgr2ycbcr(img_lq, y_only=True)[..., None]

        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        if self.mean is not None or self.std is not None:
            normalize(img_lq, self.mean, self.std, inplace=True)
            normalize(img_gt, self.mean, self.std, inplace=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': lq_path, 'gt_path': gt_path}


class RawLMDBMultiScalePairedImageDataset(MultiScalePairedImageDataset):
    """``MultiScalePairedImageDataset`` (LESRCNN-S) on raw-pixel LMDBs; options and samples as its.

    Args:
        opt (dict): ``MultiScalePairedImageDataset``'s options, with ``dataroot_gt`` and the
            ``dataroot_lq`` template naming ``*_raw.lmdb`` databases and ``io_backend: {type: lmdb}``.
    """

    def __init__(self, opt: dict) -> None:
        _require_lmdb(opt, type(self).__name__)
        super().__init__(opt)

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = self._open_file_client()
        paths = self.paths[index]
        gt_path = paths['gt_path']
        img_gt = decode_raw(self.file_client.get(gt_path, 'gt'), f'{self.gt_root}[{gt_path}]')
        sample = {'gt_path': gt_path}
        for k in self.scales:
            lq_path = paths[f'lq_x{k}_path']
            img_lq = decode_raw(self.file_client.get(lq_path, f'lq_x{k}'), f'{self.lq_roots[k]}[{lq_path}]')
            patch_gt, patch_lq = paired_random_crop(img_gt, img_lq, self.lq_size * k, k, gt_path)
            patch_gt, patch_lq = augment([to_float(patch_gt), to_float(patch_lq)], self.opt['use_hflip'],
                                         self.opt['use_rot'])
            sample[f'gt_x{k}'], sample[f'lq_x{k}'] = img2tensor([patch_gt, patch_lq], bgr2rgb=True, float32=True)
        return sample


__all__ = ['RawLMDBMultiScalePairedImageDataset', 'RawLMDBPairedImageDataset', 'to_float']
