"""Reading and writing 8-bit images with errors that name the file.

Images are handled as OpenCV gives them: ``HxWx3`` BGR or ``HxW`` grayscale, ``uint8``. Inputs are
checked here once, so the preparation tools fail with one clear message instead of a traceback
from deep inside a resize or an LMDB write.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np

from ..fileio import atomic_path, sibling_name

IMAGE_EXTENSIONS = ('.png', '.bmp', '.jpg', '.jpeg', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class DataError(ValueError):
    """A problem with an input file or folder; the message names it and says what is wrong."""


def decode_image(data: bytes, source: str = '<bytes>') -> np.ndarray:
    """Decode image bytes to an 8-bit ``HxW`` or ``HxWxC`` array, exactly as stored.

    Args:
        data: encoded image (PNG, JPEG, ...).
        source: file name used in error messages.

    Raises:
        DataError: the bytes do not decode (unreadable or truncated file).
    """
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    # libjpeg fills a truncated JPEG with grey and only warns; its end-of-image marker tells.
    if image is not None and data[:2] == b'\xff\xd8' and not data.rstrip(b'\0').endswith(b'\xff\xd9'):
        image = None
    if image is None:
        raise DataError(f'{source}: cannot decode the image (unreadable, truncated or not an image file)')
    return image


def to_8bit_color(image: np.ndarray, source: str, grayscale_to_color: bool = True) -> np.ndarray:
    """Bring a decoded image to the form the networks are trained on: 8-bit BGR.

    Handling, by input kind:
      * ``uint8`` BGR: returned as is.
      * grayscale (``HxW`` or ``HxWx1``): replicated to 3 channels when ``grayscale_to_color``
        (some Set14 / BSD100 images are grayscale), else returned as ``HxW``.
      * BGRA: the alpha channel is dropped when it is fully opaque; a transparent image is refused,
        since what lies under the transparency is undefined.
      * 16-bit or floating-point images are refused: rescaling them to 8 bits is a choice the
        user should make, and published benchmarks are 8-bit.

    Args:
        image: an array from :func:`decode_image`.
        source: file name used in error messages.
        grayscale_to_color: replicate grayscale images to 3 channels.

    Raises:
        DataError: the image kind is not supported.
    """
    if image.dtype != np.uint8:
        bits = image.dtype.itemsize * 8
        raise DataError(f'{source}: {bits}-bit {image.dtype} image; only 8-bit images are supported '
                        '(convert it to 8 bits per channel first)')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        if np.any(image[:, :, 3] != 255):
            raise DataError(f'{source}: image with a transparent alpha channel; save it without alpha first')
        image = np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if grayscale_to_color else image
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f'{source}: unsupported image shape {image.shape}')
    return image


def read_image(path: str | os.PathLike, grayscale_to_color: bool = True) -> np.ndarray:
    """Read an image file as ``uint8`` BGR (see :func:`to_8bit_color` for what is accepted).

    Args:
        path: the image file.
        grayscale_to_color: replicate grayscale images to 3 channels.

    Raises:
        DataError: the file is missing, unreadable, truncated or of an unsupported kind.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f'{path}: cannot read the file ({exc.strerror or exc})') from exc
    return to_8bit_color(decode_image(data, str(path)), str(path), grayscale_to_color)


def encode_png(image: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of an 8-bit image; deterministic for a given image and level.

    Args:
        image: ``HxW`` or ``HxWxC`` ``uint8`` array (BGR order, as OpenCV writes it).
        compress_level: zlib level 0-9; BasicSR's LMDBs use 1 (fast, about 10% larger than 9).
    """
    ok, buffer = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)])
    if not ok:
        raise DataError(f'cannot encode an image of shape {image.shape} and dtype {image.dtype} as PNG')
    return buffer.tobytes()


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


def make_sibling_dir(path: Path, suffix: str) -> Path:
    """A new, uniquely named hidden folder next to ``path`` (same file system, so renames are atomic).

    Unlike ``tempfile.mkdtemp`` (mode 0700) it gets the usual permissions, so a database renamed
    from it stays readable by other users.
    """
    while True:
        candidate = sibling_name(path, suffix)
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue


def remove_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Delete what :func:`make_sibling_dir` made in ``folder`` for processes that no longer run.

    A killed run leaves its temporary folders (``.<name>.<pid>.<random>.<tmp|old|partial>``) behind;
    the next run removes them. Those of live processes are left alone.

    Args:
        folder: the folder to clean.
        name: only temporaries made for this file or folder name; all when ``None``.

    Returns:
        The paths removed.
    """
    name_pattern = re.escape(name) if name is not None else '.+'
    pattern = re.compile(rf'^\.{name_pattern}\.(\d+)\.[0-9a-f]{{8}}\.(tmp|old|partial)$')
    removed = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = pattern.match(entry.name)
        if match and not _process_alive(int(match.group(1))):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader (or a rerun after a crash) sees either the old file, the complete new one, or none.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_png(path: str | os.PathLike, image: np.ndarray, compress_level: int = 1) -> None:
    """Encode ``image`` as PNG and write it atomically to ``path``."""
    write_bytes_atomic(path, encode_png(image, compress_level))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name.

    Raises:
        DataError: two files share a name up to the extension (``0001.png`` and ``0001.jpg``), which
            would give two images the same key.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    seen: dict[str, Path] = {}
    for file in files:
        if file.stem in seen:
            raise DataError(f'{file} and {seen[file.stem]}: two images named "{file.stem}"; '
                            'keep one of them (names without extension must be unique)')
        seen[file.stem] = file
    return files
