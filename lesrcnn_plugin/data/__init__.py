"""Data preparation: MATLAB-exact bicubic resize, BasicSR-layout LMDBs, sub-images, checked image I/O."""
from .image_io import (DataError, decode_image, encode_png, list_images, make_sibling_dir, png_shape, read_image,
                       remove_stale_temporaries, to_8bit_color, write_bytes_atomic, write_png)
from .lmdb_io import read_meta_info, verify_lmdb, write_lmdb, write_lmdb_records
from .matlab_resize import imresize, modcrop
from .subimages import crop_grid, crop_starts, extract, scaled_crop, subimage_key

__all__ = [
    'DataError', 'decode_image', 'encode_png', 'list_images', 'make_sibling_dir', 'png_shape', 'read_image',
    'remove_stale_temporaries', 'to_8bit_color', 'write_bytes_atomic', 'write_png',
    'read_meta_info', 'verify_lmdb', 'write_lmdb', 'write_lmdb_records',
    'imresize', 'modcrop',
    'crop_grid', 'crop_starts', 'extract', 'scaled_crop', 'subimage_key',
]
