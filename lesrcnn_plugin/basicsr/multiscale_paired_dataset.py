"""Training data for LESRCNN-S: one HR/LR patch pair for every scale from each HR image.

LESRCNN-S shares one body between the x2, x3 and x4 upsamplers and is trained with one scale per
iteration, drawn at random for the whole batch (the authors' multi-scale recipe, inherited from
CARN). A sample of ``MultiScalePairedImageDataset`` therefore carries a pair per scale, each cut
from the same HR sub-image and its bicubic LR of that scale; ``LESRCNNModel`` keeps the pair of
the scale drawn for the iteration. The LR images stay the exact (MATLAB-bicubic) ones of the
LR databases: downsampling on the fly would train on a different degradation than the benchmarks.
"""
from __future__ import annotations

from torch.utils import data

from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_lmdb
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, imfrombytes, img2tensor

from ..data.lmdb_io import check_lmdb_keys


class MultiScalePairedImageDataset(data.Dataset):
    """HR images with their bicubic LR at several scales; a random aligned patch pair per scale.

    Each scale's pair is cropped independently (LR patch ``lq_size``, HR patch ``lq_size * k`` at
    the matching place) and flipped/rotated independently, as in the authors' code. Samples are
    dicts with ``gt_x{k}`` (3, lq_size*k, lq_size*k) and ``lq_x{k}`` (3, lq_size, lq_size) RGB
    tensors in [0, 1] for every ``k`` in ``scales``, and ``gt_path`` (the LMDB key or file path).

    Args:
        opt (dict): Dataset options:
            scales (list[int]): Scales to provide, e.g. ``[2, 3, 4]``.
            dataroot_gt (str): HR LMDB (or folder).
            dataroot_lq (str): LR LMDB (or folder) path template with ``{scale}``, e.g.
                ``datasets/DIV2K/DIV2K_train_LR_bicubic_X{scale}_sub.lmdb``. The LMDBs must hold the
                same keys as the HR one.
            io_backend (dict): ``{type: lmdb}`` or ``{type: disk}``.
            filename_tmpl (str): Disk backend only: LR file name (without extension) from the HR
                one, may use ``{scale}``, e.g. ``'{}x{scale}'``. Default ``'{}'``.
            lq_size (int): LR patch size (64 in the paper's recipe).
            use_hflip (bool): Random horizontal flips.
            use_rot (bool): Random rotations by multiples of 90 degrees.

    Raises:
        DataError: an LMDB lacks a key its ``meta_info.txt`` lists (checked here, once, rather than
            found by a ``TypeError`` in a dataloader worker mid-run).
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.scales = [int(k) for k in opt['scales']]
        if not self.scales:
            raise ValueError('MultiScalePairedImageDataset needs at least one scale in "scales"')
        if '{scale}' not in opt['dataroot_lq']:
            raise ValueError(f'dataroot_lq must contain "{{scale}}" to name each scale\'s LR data, '
                             f'got {opt["dataroot_lq"]!r}')
        self.lq_size = int(opt['lq_size'])
        self.gt_root = opt['dataroot_gt']
        self.lq_roots = {k: opt['dataroot_lq'].format(scale=k) for k in self.scales}
        self.io_backend_opt = dict(opt['io_backend'])
        self.file_client = None  # opened lazily, once per dataloader worker
        self.paths = self._pair_paths()

    def _pair_paths(self) -> list[dict[str, str]]:
        """One dict per HR image: ``gt_path`` and ``lq_x{k}_path`` for every scale."""
        per_scale = {}
        if self.io_backend_opt['type'] == 'lmdb':
            for root in (self.gt_root, *self.lq_roots.values()):
                check_lmdb_keys(root)
        for k, lq_root in self.lq_roots.items():
            if self.io_backend_opt['type'] == 'lmdb':
                pairs = paired_paths_from_lmdb([lq_root, self.gt_root], ['lq', 'gt'])
            else:
                tmpl = self.opt.get('filename_tmpl', '{}').format('{}', scale=k)
                pairs = paired_paths_from_folder([lq_root, self.gt_root], ['lq', 'gt'], tmpl)
            per_scale[k] = {pair['gt_path']: pair['lq_path'] for pair in pairs}
        gt_paths = sorted(per_scale[self.scales[0]])
        for k in self.scales[1:]:
            if sorted(per_scale[k]) != gt_paths:
                raise ValueError(f'{self.lq_roots[k]} and {self.lq_roots[self.scales[0]]} do not pair with the same '
                                 f'HR images of {self.gt_root}')
        return [{'gt_path': gt, **{f'lq_x{k}_path': per_scale[k][gt] for k in self.scales}} for gt in gt_paths]

    def _open_file_client(self) -> FileClient:
        backend = dict(self.io_backend_opt)
        backend_type = backend.pop('type')
        if backend_type == 'lmdb':
            backend['db_paths'] = [self.gt_root, *self.lq_roots.values()]
            backend['client_keys'] = ['gt', *(f'lq_x{k}' for k in self.lq_roots)]
        return FileClient(backend_type, **backend)

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = self._open_file_client()
        paths = self.paths[index]
        gt_path = paths['gt_path']
        img_gt = imfrombytes(self.file_client.get(gt_path, 'gt'), float32=True)
        sample = {'gt_path': gt_path}
        for k in self.scales:
            img_lq = imfrombytes(self.file_client.get(paths[f'lq_x{k}_path'], f'lq_x{k}'), float32=True)
            patch_gt, patch_lq = paired_random_crop(img_gt, img_lq, self.lq_size * k, k, gt_path)
            # The crop is a view into the HR image that the other scales are cut from, and augment
            # flips in place (cv2.flip(img, 1, img)): flip a copy, or their patches hold a flipped piece.
            patch_gt, patch_lq = augment([patch_gt.copy(), patch_lq], self.opt['use_hflip'], self.opt['use_rot'])
            sample[f'gt_x{k}'], sample[f'lq_x{k}'] = img2tensor([patch_gt, patch_lq], bgr2rgb=True, float32=True)
        return sample

    def __len__(self) -> int:
        return len(self.paths)
