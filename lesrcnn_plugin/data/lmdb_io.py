"""LMDB image databases in BasicSR's layout, readable by BasicSR and MMagic alike.

Layout of ``<name>.lmdb/`` (BasicSR's ``scripts/data_preparation/create_lmdb.py``)::

    data.mdb        key = image name without extension (ASCII), value = PNG bytes
    lock.mdb
    meta_info.txt   one line per image, in insertion order: "<key>.png (<h>,<w>,<c>) <compress_level>"

BasicSR's ``FileClient('lmdb')`` and MMagic's ``LoadImageFromFile(backend_args=dict(backend='lmdb'))``
both look an image up by that key. The database is written in a temporary folder next to the
target and renamed into place at the end, so an interrupted write never leaves a database that
looks complete. The same records in the same order give a byte-identical ``data.mdb`` and
``meta_info.txt`` (``lock.mdb`` only holds reader slots). A write that fails (a full disk, a
read-only folder) names the database and leaves no temporary folder behind.

``check_lmdb_keys`` checks, in one read-only transaction, that every key a loader will ask for is
stored: BasicSR's and MMagic's loaders take their keys from ``meta_info.txt`` (or an annotation file)
and a missing one ends a training run mid-way with a ``TypeError`` naming neither key nor database.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import lmdb
import numpy as np

from ..errors import DataError, ImageError
from ..fileio import errors_name, make_sibling_dir, remove_stale_temporaries, replace_dir
from ..image_io import decode_image, encode_png
from .lmdb_check import check_data_file

META_INFO = 'meta_info.txt'
# Initial address-space reservation; doubled whenever a batch does not fit. The file itself only
# grows with its contents.
_INITIAL_MAP_SIZE = 1 << 26
# Commit after this many records or bytes, whichever comes first.
_BATCH_RECORDS = 1000
_BATCH_BYTES = 1 << 28
# Size of LMDB's lock file with its default 126 reader slots on 64-bit Linux (``lock.mdb``).
_LOCK_FILE_BYTES = 8192


def png_shape(data: bytes) -> tuple[int, int, int]:
    """``(height, width, channels)`` of PNG bytes, read from the header without decoding.

    Raises:
        DataError: the bytes are not a PNG of 8-bit gray, RGB or RGBA pixels.
    """
    if data[:8] != b'\x89PNG\r\n\x1a\n' or data[12:16] != b'IHDR':
        raise DataError('not a PNG file')
    width = int.from_bytes(data[16:20], 'big')
    height = int.from_bytes(data[20:24], 'big')
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(data[25])
    if channels is None or data[24] != 8:
        raise DataError(f'unsupported PNG pixel format (bit depth {data[24]}, colour type {data[25]})')
    return height, width, channels


def _check_key(key: str) -> bytes:
    """The key as ASCII bytes; keys go into meta_info.txt, so no whitespace and no extension."""
    if not key or any(c.isspace() for c in key) or not key.isascii():
        raise DataError(f'invalid LMDB key {key!r}: keys must be non-empty ASCII without whitespace')
    return key.encode('ascii')


@contextlib.contextmanager
def _lmdb_errors_name(db_path: Path, key: str | None = None) -> Iterator[None]:
    """Re-raise an ``lmdb.Error`` (a full disk is ``DiskError``) as a ``DataError`` naming ``db_path`` (and ``key``).

    py-lmdb's messages read ``<call or temporary path>: <reason>``; the user asked for ``db_path``.
    """
    try:
        yield
    except lmdb.Error as exc:
        where = f'{db_path}[{key}]' if key is not None else str(db_path)
        hint = '; rebuild it (lesrcnn-prepare-div2k --overwrite)' if key is not None else ''
        raise DataError(f'{where}: {str(exc).rsplit(": ", 1)[-1]}{hint}') from None


def _reserve_lock_file(folder: Path) -> None:
    """Write LMDB's lock file with ``write()`` before LMDB maps it into memory.

    LMDB creates ``lock.mdb`` as a sparse file and writes into it through a memory map: on a full
    file system that write kills the process with SIGBUS, past any error handling. Once its blocks
    are written here, a full disk is an ordinary ``OSError``.
    """
    (folder / 'lock.mdb').write_bytes(bytes(_LOCK_FILE_BYTES))


def _commit_batch(env: lmdb.Environment, batch: list[tuple[bytes, bytes]]) -> None:
    """Write one batch in one transaction, enlarging the map until it fits."""
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in batch:
                    if not txn.put(key, value, overwrite=False):
                        raise DataError(f'duplicate key {key.decode()!r}: every image needs a unique name')
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()['map_size'] * 2)


def write_lmdb_records(db_path: str | os.PathLike, records: Iterable[tuple[str, bytes]],
                       compress_level: int = 1, overwrite: bool = False,
                       extra_files: Mapping[str, str] | None = None) -> int:
    """Write already PNG-encoded images to a BasicSR-layout LMDB, atomically.

    Args:
        db_path: the database folder to create, conventionally ending in ``.lmdb``.
        records: ``(key, png_bytes)`` pairs in the order to store them (give them sorted for a
            database that does not depend on the order images were produced in).
        compress_level: PNG compression level written to ``meta_info.txt``.
        overwrite: replace an existing database; otherwise an existing one is an error.
        extra_files: ``{name: text}`` of files to write into the database folder, such as a record
            of how it was made; they appear with the database, never without it.

    Returns:
        The number of records written.

    Raises:
        DataError: a key is invalid or repeated, a value is not a PNG, the database exists, or LMDB
            fails (naming ``db_path``).
        OSError: naming ``db_path``, when it cannot be written (a full disk, a read-only folder).
    """
    db_path = Path(db_path)
    if db_path.exists() and not overwrite:
        raise DataError(f'{db_path} already exists (use overwrite to replace it)')
    with errors_name(db_path, db_path.parent):
        db_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(db_path.parent, db_path.name)
    tmp_dir = make_sibling_dir(db_path, 'tmp')
    try:
        with errors_name(db_path, tmp_dir), _lmdb_errors_name(db_path):
            count = _write_records(tmp_dir, records, compress_level)
            for name, text in (extra_files or {}).items():
                (tmp_dir / name).write_text(text, encoding='utf-8')
            replace_dir(tmp_dir, db_path)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return count


def _write_records(folder: Path, records: Iterable[tuple[str, bytes]], compress_level: int) -> int:
    """Write ``records`` into a new LMDB in ``folder`` with its ``meta_info.txt``; returns their number."""
    count = 0
    _reserve_lock_file(folder)
    env = lmdb.open(str(folder), map_size=_INITIAL_MAP_SIZE, meminit=True)
    try:
        with open(folder / META_INFO, 'w', encoding='ascii', newline='\n') as meta:
            batch: list[tuple[bytes, bytes]] = []
            batch_bytes = 0
            for key, value in records:
                try:
                    height, width, channels = png_shape(value)
                except DataError as exc:
                    raise DataError(f'image {key!r}: {exc}') from exc
                batch.append((_check_key(key), value))
                batch_bytes += len(value)
                meta.write(f'{key}.png ({height},{width},{channels}) {compress_level}\n')
                count += 1
                if len(batch) >= _BATCH_RECORDS or batch_bytes >= _BATCH_BYTES:
                    _commit_batch(env, batch)
                    batch, batch_bytes = [], 0
            if batch:
                _commit_batch(env, batch)
    finally:
        env.close()
    return count


def write_lmdb(db_path: str | os.PathLike, images: Iterable[tuple[str, np.ndarray]], compress_level: int = 1,
               overwrite: bool = False) -> int:
    """Write images to a BasicSR-layout LMDB, atomically and deterministically.

    Args:
        db_path: the database folder to create, conventionally ending in ``.lmdb``.
        images: ``(key, image)`` pairs; ``key`` is the name without extension (e.g. ``0001_s001``),
            ``image`` an ``HxWx3`` BGR (as ``cv2.imread`` gives) or ``HxW`` grayscale ``uint8`` array.
        compress_level: PNG compression level (BasicSR uses 1).
        overwrite: replace an existing database; otherwise an existing one is an error.

    Returns:
        The number of images written.
    """
    def encoded() -> Iterator[tuple[str, bytes]]:
        for key, image in images:
            if image.dtype != np.uint8 or image.ndim not in (2, 3):
                raise DataError(f'image {key!r}: expected an HxW or HxWxC uint8 array, '
                                f'got shape {image.shape} and dtype {image.dtype}')
            yield key, encode_png(image, compress_level)

    return write_lmdb_records(db_path, encoded(), compress_level, overwrite)


def read_meta_info(db_path: str | os.PathLike) -> list[tuple[str, tuple[int, int, int]]]:
    """``[(key, (h, w, c)), ...]`` from a database's ``meta_info.txt``, in file order.

    Raises:
        DataError: the file is missing or a line is malformed.
    """
    meta_path = Path(db_path) / META_INFO
    if not meta_path.is_file():
        raise DataError(f'{meta_path}: missing; {db_path} is not a BasicSR-layout LMDB')
    entries = []
    for number, line in enumerate(meta_path.read_text(encoding='ascii').splitlines(), start=1):
        try:
            name, shape, _level = line.split(' ')
            key = name.rsplit('.', 1)[0]
            height, width, channels = (int(v) for v in shape.strip('()').split(','))
        except ValueError as exc:
            raise DataError(f'{meta_path}:{number}: malformed line {line!r}') from exc
        entries.append((key, (height, width, channels)))
    return entries


def open_readonly(db_path: str | os.PathLike) -> lmdb.Environment:
    """Open an LMDB database for reading, as BasicSR's and mmengine's loaders do (no lock file).

    Its ``data.mdb`` is checked first (``lmdb_check.check_data_file``): LMDB would read a truncated
    or damaged one past its end, which kills the process with SIGBUS.

    Raises:
        DataError: naming ``db_path``, when it is not a folder holding an LMDB ``data.mdb``, or that
            file is truncated or damaged.
    """
    if not (Path(db_path) / 'data.mdb').is_file():
        raise DataError(f'{db_path}: not an LMDB database (no data.mdb); build it with lesrcnn-prepare-div2k')
    with errors_name(Path(db_path) / 'data.mdb'):
        check_data_file(db_path)  # a truncated or damaged file would kill the process (SIGBUS)
    with _lmdb_errors_name(Path(db_path)):
        return lmdb.open(str(db_path), readonly=True, lock=False, readahead=False)


def check_lmdb_keys(db_path: str | os.PathLike, keys: Iterable[str] | None = None,
                    listed_in: str | os.PathLike | None = None) -> int:
    """Check that every key a loader will ask ``db_path`` for is stored in it; returns how many there are.

    One read-only transaction, one B-tree lookup per key and no value read (0.1 s for the 32,000
    keys of DIV2K's sub-images, database in the page cache): cheap enough for every start of a run.

    Args:
        db_path: the database folder.
        keys: the keys to look up; default those of the database's own ``meta_info.txt``.
        listed_in: where ``keys`` come from, for the message (default the ``meta_info.txt``).

    Raises:
        DataError: naming the database and the first key it lacks (or its missing ``data.mdb``).
    """
    if keys is None:
        keys = [key for key, _shape in read_meta_info(db_path)]
        listed_in = Path(db_path) / META_INFO
    env = open_readonly(db_path)
    count = 0
    try:
        with env.begin(buffers=True) as txn:  # buffers: the values are never copied out
            for key in keys:
                with _lmdb_errors_name(Path(db_path), key):
                    value = txn.get(key.encode())
                if value is None:
                    raise DataError(f'{db_path}: key {key!r}, listed in {listed_in}, is not in the database '
                                    f'({env.stat()["entries"]} records); rebuild it (lesrcnn-prepare-div2k '
                                    '--overwrite)')
                count += 1
    finally:
        env.close()
    return count


def verify_lmdb(db_path: str | os.PathLike, progress: bool = False) -> dict[str, tuple[int, int, int]]:
    """Check that every key in ``meta_info.txt`` is in the database and decodes to the stated shape.

    Args:
        db_path: the database folder.
        progress: show a tqdm progress bar.

    Returns:
        ``{key: (h, w, c)}`` for every image.

    Raises:
        DataError: naming the database and the first key that is missing, undecodable, of the wrong
            shape, or present in the database but not in ``meta_info.txt``.
    """
    from tqdm import tqdm

    entries = read_meta_info(db_path)
    shapes: dict[str, tuple[int, int, int]] = {}
    env = open_readonly(db_path)
    try:
        with env.begin(write=False) as txn:
            if txn.stat()['entries'] != len(entries):
                raise DataError(f'{db_path}: {txn.stat()["entries"]} records but {len(entries)} lines '
                                f'in {META_INFO}')
            for key, shape in tqdm(entries, desc=f'verify {Path(db_path).name}', disable=not progress,
                                   unit='img'):
                with _lmdb_errors_name(Path(db_path), key):
                    value = txn.get(key.encode('ascii'))
                if value is None:
                    raise DataError(f'{db_path}: key {key!r} is listed in {META_INFO} but not stored')
                try:
                    image = decode_image(value, f'{db_path}[{key}]')
                except ImageError as exc:  # a damaged record is a problem of the database
                    raise DataError(str(exc)) from exc
                actual = image.shape if image.ndim == 3 else image.shape + (1,)
                if tuple(actual) != shape:
                    raise DataError(f'{db_path}[{key}]: decodes to {tuple(actual)}, {META_INFO} says {shape}')
                shapes[key] = shape
    finally:
        env.close()
    return shapes
