"""Raw-pixel LMDBs: the PNG databases' sub-images stored decoded, so that training never decodes.

A training sample of the shipped recipes decodes a 480x480 HR PNG and its LR PNG only to crop a
64x64 LR patch (and the HR patch at the same place) out of them. A raw database holds the same
images as its PNG database, under the same keys and in the same order, each value being the pixels
that BasicSR's and MMagic's readers decode from the PNG (``HxWx3`` ``uint8``, BGR) behind a small
header. Reading one is a memory copy; the datasets crop before converting to float, so a sample
costs a fraction of a millisecond instead of several.

Layout of ``<name>_raw.lmdb/``, written beside ``<name>.lmdb`` (``raw_db_path``)::

    data.mdb        key = the PNG database's key; value = HEADER + pixels in C order
    lock.mdb
    meta_info.txt   "<key>.raw (<h>,<w>,<c>) raw", in the PNG database's order

``HEADER`` is ``struct`` ``'<4s4sIII'``: the magic ``b'LRAW'``, the numpy dtype string (``'|u1'``,
padded to 4 bytes), height, width and channels. BasicSR's ``paired_paths_from_lmdb`` and MMagic's
``BasicImageDataset`` read the keys from ``meta_info.txt`` as they do for PNG databases.

The price is disk space: raw sub-images take the size of their pixels (about 32 GB for DIV2K's HR
and x2/x3/x4 databases, where level-1 PNGs of photographs take roughly 60 % of that), and training
is fastest when the page cache holds them.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import lmdb
import numpy as np
from tqdm import tqdm

from ..errors import DataError, ImageError
from ..fileio import make_folder, make_sibling_dir, remove_stale_temporaries, replace_dir
from ..image_io import decode_image
from .div2k_splits import Split
from .lmdb_io import _INITIAL_MAP_SIZE, META_INFO, _check_key, _commit_batch, read_meta_info

MAGIC = b'LRAW'
HEADER = struct.Struct('<4s4sIII')
RAW_SUFFIX = '_raw'
_DTYPE = np.dtype(np.uint8)
_BATCH_RECORDS = 256  # values are large (a 480x480 HR sub-image is 691 kB): commit often


def raw_db_path(png_db: str | os.PathLike) -> str:
    """The raw database beside a PNG one: ``X_sub.lmdb`` -> ``X_sub_raw.lmdb`` (``{scale}`` templates kept)."""
    text = os.fspath(png_db).rstrip('/')
    if not text.endswith('.lmdb') or text.endswith(f'{RAW_SUFFIX}.lmdb'):
        raise DataError(f'{png_db}: expected a PNG database folder ending in .lmdb (and not in {RAW_SUFFIX}.lmdb)')
    return text[:-len('.lmdb')] + f'{RAW_SUFFIX}.lmdb'


def png_db_path(raw_db: str | os.PathLike) -> str:
    """The PNG database a raw one was made from: ``X_sub_raw.lmdb`` -> ``X_sub.lmdb``."""
    text = os.fspath(raw_db).rstrip('/')
    if not text.endswith(f'{RAW_SUFFIX}.lmdb'):
        raise DataError(f'{raw_db}: expected a raw database folder ending in {RAW_SUFFIX}.lmdb')
    return text[:-len(f'{RAW_SUFFIX}.lmdb')] + '.lmdb'


def encode_raw(image: np.ndarray) -> bytes:
    """HEADER + the pixels of an ``HxWx3`` ``uint8`` image."""
    if image.dtype != _DTYPE or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f'raw databases hold HxWx3 uint8 images, got shape {image.shape} and dtype {image.dtype}')
    header = HEADER.pack(MAGIC, _DTYPE.str.encode('ascii').ljust(4, b'\0'), *image.shape)
    return header + np.ascontiguousarray(image).tobytes()


def decode_raw(value: bytes | memoryview | None, source: str) -> np.ndarray:
    """The image of a raw value: a read-only ``HxWxC`` view of ``value``, no copy.

    Raises:
        DataError: naming ``source``, when the value is missing, a PNG (a PNG database given where a
            raw one is expected), or not a whole raw image.
    """
    if value is None:
        raise DataError(f'{source}: no such key')
    if len(value) < HEADER.size or bytes(value[:4]) != MAGIC:
        hint = (': this is a PNG database; point the raw dataset at the *_raw.lmdb database that '
                '"lesrcnn-prepare-div2k --storage raw" writes') if bytes(value[:4]) == b'\x89PNG' else ''
        raise DataError(f'{source}: not a raw image value{hint}')
    _, dtype, height, width, channels = HEADER.unpack_from(value)
    dtype = np.dtype(dtype.rstrip(b'\0').decode('ascii'))
    if len(value) != HEADER.size + height * width * channels * dtype.itemsize:
        raise DataError(f'{source}: {len(value)} bytes do not hold a {height}x{width}x{channels} {dtype} image')
    return np.frombuffer(value, dtype, offset=HEADER.size).reshape(height, width, channels)


def decode_png_value(value: bytes | None, source: str) -> np.ndarray:
    """What the frameworks' readers decode from a PNG value, checked to be ``HxWx3`` ``uint8``."""
    if value is None:
        raise DataError(f'{source}: no such key')
    try:
        image = decode_image(value, source)
    except ImageError as exc:  # a damaged record is a problem of the database
        raise DataError(str(exc)) from exc
    if image.dtype != _DTYPE or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f'{source}: raw databases hold 8-bit 3-channel images (as lesrcnn-prepare-div2k writes), '
                        f'this one has shape {image.shape} and dtype {image.dtype}')
    return image


def write_raw_lmdb(db_path: str | os.PathLike, images: Iterable[tuple[str, np.ndarray]],
                   overwrite: bool = False) -> int:
    """Write ``(key, image)`` pairs to a raw database, atomically (temporary folder renamed into place).

    Returns:
        The number of images written.

    Raises:
        DataError: a key is invalid or repeated, an image is not ``HxWx3`` ``uint8``, or the database
            exists and ``overwrite`` is false.
    """
    db_path = Path(db_path)
    if db_path.exists() and not overwrite:
        raise DataError(f'{db_path} already exists (use overwrite to replace it)')
    make_folder(db_path.parent)
    remove_stale_temporaries(db_path.parent, db_path.name)
    tmp_dir = make_sibling_dir(db_path, 'tmp')
    count = 0
    try:
        # meminit zeroes the unused bytes of each page: the same images give the same data.mdb bytes.
        env = lmdb.open(str(tmp_dir), map_size=_INITIAL_MAP_SIZE, meminit=True)
        try:
            with open(tmp_dir / META_INFO, 'w', encoding='ascii', newline='\n') as meta:
                batch: list[tuple[bytes, bytes]] = []
                for key, image in images:
                    batch.append((_check_key(key), encode_raw(image)))
                    height, width, channels = image.shape
                    meta.write(f'{key}.raw ({height},{width},{channels}) raw\n')
                    count += 1
                    if len(batch) >= _BATCH_RECORDS:
                        _commit_batch(env, batch)
                        batch = []
                if batch:
                    _commit_batch(env, batch)
        finally:
            env.close()
        replace_dir(tmp_dir, db_path)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return count


def _png_values(png_db: Path, keys: list[str]) -> Iterator[tuple[str, bytes]]:
    env = lmdb.open(str(png_db), readonly=True, lock=False, readahead=False)
    try:
        with env.begin(write=False) as txn:
            for key in keys:
                yield key, txn.get(key.encode('ascii'))
    finally:
        env.close()


def _decode_record(record: tuple[str, str, bytes | None]) -> tuple[str, np.ndarray]:
    source, key, value = record
    return key, decode_png_value(value, f'{source}[{key}]')


def convert_png_lmdb(png_db: str | os.PathLike, raw_db: str | os.PathLike | None = None, workers: int = 1,
                     overwrite: bool = False, progress: bool = True) -> int:
    """Write the raw copy of a PNG database (default ``raw_db_path(png_db)``): same keys, same order.

    Each PNG is decoded once, in ``workers`` processes; returns the number of images written.
    """
    png_db = Path(png_db)
    raw_db = Path(raw_db if raw_db is not None else raw_db_path(png_db))
    keys = [key for key, _ in read_meta_info(png_db)]
    records = ((str(png_db), key, value) for key, value in _png_values(png_db, keys))
    with tqdm(total=len(keys), desc=f'write {raw_db.name}', unit='img', disable=not progress) as bar:
        def counted(images: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
            for item in images:
                yield item
                bar.update()

        if workers <= 1:
            return write_raw_lmdb(raw_db, counted(map(_decode_record, records)), overwrite)
        with multiprocessing.Pool(workers) as pool:
            return write_raw_lmdb(raw_db, counted(pool.imap(_decode_record, records, chunksize=8)), overwrite)


def verify_raw_lmdb(raw_db: str | os.PathLike, png_db: str | os.PathLike | None = None,
                    progress: bool = False) -> int:
    """Check a raw database pixel for pixel against its PNG database; returns the number of images.

    Both ``meta_info.txt`` files list the same keys in the same order with the same shapes, both
    databases hold exactly those records, and every raw value equals the decoded PNG.

    Raises:
        DataError: naming the database and the first key that differs.
    """
    raw_db = Path(raw_db)
    png_db = Path(png_db if png_db is not None else png_db_path(raw_db))
    raw_entries, png_entries = read_meta_info(raw_db), read_meta_info(png_db)
    if raw_entries != png_entries:
        differ = next((r, p) for r, p in zip(raw_entries + [None], png_entries + [None]) if r != p)
        raise DataError(f'{raw_db} and {png_db} list different images in {META_INFO} (first difference: '
                        f'{differ[0]} against {differ[1]})')
    raw_env = lmdb.open(str(raw_db), readonly=True, lock=False, readahead=False)
    try:
        with raw_env.begin(write=False, buffers=True) as txn:
            if txn.stat()['entries'] != len(raw_entries):
                raise DataError(f'{raw_db}: {txn.stat()["entries"]} records but {len(raw_entries)} lines '
                                f'in {META_INFO}')
            pngs = _png_values(png_db, [key for key, _ in png_entries])
            for (key, shape), (_, png) in tqdm(zip(raw_entries, pngs), total=len(raw_entries), unit='img',
                                               desc=f'verify {raw_db.name}', disable=not progress):
                raw = decode_raw(txn.get(key.encode('ascii')), f'{raw_db}[{key}]')
                if raw.shape != shape:
                    raise DataError(f'{raw_db}[{key}]: holds {raw.shape}, {META_INFO} says {shape}')
                if not np.array_equal(raw, decode_png_value(png, f'{png_db}[{key}]')):
                    raise DataError(f'{raw_db}[{key}]: pixels differ from {png_db}[{key}]')
    finally:
        raw_env.close()
    return len(raw_entries)


def build_raw_split(split: Split, scales: Iterable[int], workers: int, overwrite: bool) -> list[str]:
    """Raw copies of a DIV2K split's PNG databases (``lesrcnn-prepare-div2k --storage raw``); report lines."""
    lines = []
    for label in split.db_labels(scales):
        png_db = split.db_path(label)
        raw_db = Path(raw_db_path(png_db))
        # A PNG database rebuilt after its raw copy was made makes the copy stale.
        stale = raw_db.exists() and (raw_db / 'data.mdb').stat().st_mtime < (png_db / 'data.mdb').stat().st_mtime
        if raw_db.exists() and not overwrite and not stale:
            lines.append(f'{raw_db}: exists, kept (--overwrite to rebuild)')
            continue
        count = convert_png_lmdb(png_db, raw_db, workers=workers, overwrite=True)
        lines.append(f'{raw_db}: {count} raw sub-images from {png_db.name}'
                     + (' (the old copy was stale)' if stale else ''))
    return lines


def verify_raw_split(split: Split, scales: Iterable[int]) -> list[str]:
    """Every raw database of a split equals its PNG database pixel for pixel; report lines."""
    lines = []
    for label in split.db_labels(scales):
        png_db = split.db_path(label)
        count = verify_raw_lmdb(raw_db_path(png_db), png_db, progress=True)
        lines.append(f'verified {raw_db_path(png_db)}: {count} keys, pixel for pixel equal to {png_db.name}')
    return lines


__all__ = ['HEADER', 'MAGIC', 'RAW_SUFFIX', 'build_raw_split', 'convert_png_lmdb', 'decode_png_value', 'decode_raw',
           'encode_raw', 'png_db_path', 'raw_db_path', 'verify_raw_lmdb', 'verify_raw_split', 'write_raw_lmdb']
