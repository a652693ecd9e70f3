"""Data preparation: MATLAB-exact bicubic resize, BasicSR-layout LMDBs, sub-images.

The DIV2K and benchmark-set engines of ``lesrcnn-prepare-div2k`` and ``lesrcnn-prepare-testsets`` are
the submodules ``lesrcnn_plugin.data.div2k`` and ``lesrcnn_plugin.data.testsets``; image files are
read and written with ``lesrcnn_plugin.image_io``.
"""
from .lmdb_io import check_lmdb_keys, png_shape, read_meta_info, verify_lmdb, write_lmdb, write_lmdb_records
from .matlab_resize import imresize, modcrop
from .subimages import crop_grid, crop_starts, extract, scaled_crop, subimage_key

__all__ = [
    'check_lmdb_keys', 'png_shape', 'read_meta_info', 'verify_lmdb', 'write_lmdb', 'write_lmdb_records',
    'imresize', 'modcrop',
    'crop_grid', 'crop_starts', 'extract', 'scaled_crop', 'subimage_key',
]
