"""Where a DIV2K split is and what cuts it: ``Split``, ``Settings``, ``find_splits``.

Shared by the engine (``div2k``), the record each database keeps (``database_records``) and the raw
store (``raw_store``), none of which imports another for them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .subimages import scaled_crop

SPLITS = {'train': 'DIV2K_train', 'valid': 'DIV2K_valid'}


@dataclass(frozen=True)
class Settings:
    """What determines the content of the databases; staged sub-images are reused only under equal settings.

    Attributes:
        scales: LR scale factors.
        crop_size: HR sub-image side.
        step: HR sub-image stride.
        thresh_size: add a crop flush with the far edge when more than this many pixels are left.
        compress_level: PNG compression level of the stored sub-images.
        generate_lr: make every LR image with the MATLAB-exact resize, ignoring LR files.

    Raises:
        DataError: a scale is not a positive integer, or the crop size or step is not divisible by it.
    """
    scales: tuple[int, ...] = (2, 3, 4)
    crop_size: int = 480
    step: int = 240
    thresh_size: int = 0
    compress_level: int = 1
    generate_lr: bool = False

    def __post_init__(self):
        for scale in self.scales:
            if scale < 1:
                raise DataError(f'scale must be a positive integer, got {scale}')
            self.lr_crop(scale)

    @property
    def modulus(self) -> int:
        """HR crops lie inside the image cropped to a multiple of every scale, so LR crops align."""
        return math.lcm(*self.scales)

    def lr_crop(self, scale: int) -> tuple[int, int]:
        """LR crop size and step for ``scale`` (an error when they are not integers)."""
        return scaled_crop(self.crop_size, self.step, scale)


@dataclass(frozen=True)
class Split:
    """One DIV2K split: where its images are and what it produces.

    Attributes:
        prefix: ``DIV2K_train`` or ``DIV2K_valid``.
        hr_dir: folder of HR images.
        lr_root: folder with ``X{k}`` sub-folders of LR images (may not exist).
        output: folder receiving the databases.
    """
    prefix: str
    hr_dir: Path
    lr_root: Path
    output: Path

    def db_labels(self, scales) -> list[str]:
        """Short names of the databases: ``HR``, ``X2``, ..."""
        return ['HR'] + [f'X{k}' for k in scales]

    def db_path(self, label: str) -> Path:
        """Database folder of ``label`` (``HR`` or ``X{k}``)."""
        if label == 'HR':
            return self.output / f'{self.prefix}_HR_sub.lmdb'
        return self.output / f'{self.prefix}_LR_bicubic_{label}_sub.lmdb'


def find_splits(input_dir: Path, output_dir: Path, valid: bool = False) -> list[Split]:
    """The train split (and the valid one) of the DIV2K download unpacked in ``input_dir``.

    Raises:
        DataError: a split's HR folder is missing.
    """
    splits = [Split(SPLITS[name], input_dir / f'{SPLITS[name]}_HR', input_dir / f'{SPLITS[name]}_LR_bicubic',
                    output_dir) for name in (('train', 'valid') if valid else ('train',))]
    for split in splits:
        if not split.hr_dir.is_dir():
            raise DataError(f'{split.hr_dir}: not found; download DIV2K and unpack it in {input_dir} '
                            '(see docs/data.md)')
    return splits


__all__ = ['SPLITS', 'Settings', 'Split', 'find_splits']
