"""Reading and writing image files, with errors that name the file.

Images are arrays as OpenCV gives them: ``HxW`` gray, ``HxWx2`` gray and alpha, ``HxWx3`` BGR or
``HxWx4`` BGRA, ``uint8`` or ``uint16``. One reader serves two needs, told apart by its flags:

* ``read_image(path)`` keeps what the file holds (bit depth, alpha, gray), as ``lesrcnn-upscale``
  needs to give back an image of the same kind;
* ``read_image(path, allow_16bit=False, keep_alpha=False, grayscale_to_color=True)`` gives what the
  networks are trained on, 8-bit BGR, as the dataset preparation tools need; what cannot be brought
  to that form without a choice the user should make (16-bit, transparency) is refused.

Every problem is an ``ImageError`` naming the file, so the tools fail with one clear line instead of
a traceback from inside a resize or an LMDB write. Writes are atomic (``lesrcnn_plugin.fileio``).

Folders are listed by extension (``list_images``). Files that are images of a kind the tools do
not read (GIF: OpenCV has no decoder for it) are skipped, and images holding several frames
(multi-page TIFF, animated PNG or WebP) are read as their first frame; ``skipped_image_warnings``
and ``extra_frames_warning`` give the line per file that the commands print for each.

``read_image(path, max_pixels=N)`` reads the image size from the file's header first
(``image_size``) and refuses a larger image before decoding it: a few bytes of PNG can claim
60000x60000 pixels, which OpenCV refuses with an assertion or, a little below its own limit,
decodes into tens of GB.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError, ImageError, ImageTooLargeError
from .fileio import write_bytes_atomic

#: Extensions of the files taken as images when a folder is listed (a file named explicitly is read
#: whatever its extension).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
#: Extensions of images that OpenCV does not decode: skipped when a folder is listed, with a warning.
UNREADABLE_IMAGE_EXTENSIONS = ('.gif',)

_SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))

# Pillow's decompression-bomb limit is a module global; ``image_size`` lifts it while it reads a
# header (Pillow decodes nothing there, and the caller applies its own limit), one thread at a time.
_PILLOW_LIMIT_LOCK = threading.Lock()


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header without decoding the pixels.

    Pillow's ``Image.open`` is lazy: it parses the header (PNG's IHDR, JPEG's SOF, BMP, TIFF, WebP,
    PPM/PGM) and stops. Its decompression-bomb check is lifted for that read, since nothing is decoded.

    Raises:
        ImageError: naming the file, when it is missing, unreadable or not an image Pillow recognises.
    """
    with _PILLOW_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as image:
                return image.size
        except UnidentifiedImageError:
            raise ImageError(f'{path}: not a readable image (no image header of a known format)') from None
        except OSError as exc:
            raise ImageError(f'{path}: cannot read the file ({exc.strerror or exc})') from None
        except Exception as exc:  # Pillow's header parsers raise ValueError, EOFError, struct.error, ...
            raise ImageError(f'{path}: not a readable image (damaged header: {type(exc).__name__}: {exc})') from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def decode_image(data: bytes, source: str = '<bytes>') -> np.ndarray:
    """Decode encoded image bytes (PNG, JPEG, ...) exactly as stored (OpenCV's ``IMREAD_UNCHANGED``).

    Args:
        data: the encoded image.
        source: what the bytes are (a file name, a database key), for error messages.

    Raises:
        ImageError: the bytes do not decode (empty, unreadable, truncated or not an image).
    """
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV's CV_IO_MAX_IMAGE_PIXELS
        raise ImageError(f'{source}: not a readable image (OpenCV cannot decode it: check {exc.err!r} '
                         'failed)') from None
    # libjpeg fills a truncated JPEG with grey and only warns; its end-of-image marker tells.
    if image is not None and data[:2] == b'\xff\xd8' and not data.rstrip(b'\0').endswith(b'\xff\xd9'):
        image = None
    if image is None:
        raise ImageError(f'{source}: not a readable image (cannot decode it: empty, truncated, corrupt or of an '
                         'unsupported format)')
    return image


def read_image(path: str | os.PathLike, *, allow_16bit: bool = True, keep_alpha: bool = True,
               grayscale_to_color: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a ``uint8`` (or ``uint16``) array in OpenCV's channel order.

    With the defaults the image is returned as stored: 8- or 16-bit; gray, gray and alpha, BGR or
    BGRA. A single-channel image is always returned as ``HxW``.

    Args:
        path: the image file.
        allow_16bit: accept 16-bit images (default ``True``). ``False`` refuses them: rescaling to
            8 bits is a choice the user should make, and published SR datasets are 8-bit. Other
            pixel types (float, 32-bit) are always refused.
        keep_alpha: return the alpha channel (default ``True``). ``False`` drops it when fully
            opaque and refuses an image with a transparent pixel, since what lies under the
            transparency is undefined.
        grayscale_to_color: replicate a gray image to three channels, BGR (default ``False``; some
            Set14 and BSD100 images are gray).
        max_pixels: refuse an image of more pixels (width x height), read from the header before
            anything is decoded (``ImageTooLargeError``); no limit when ``None``.

    Raises:
        ImageError: naming the file, when it is missing or unreadable, does not decode, or is of a
            kind the flags refuse.
    """
    if max_pixels is not None:
        width, height = image_size(path)
        if width * height > max_pixels:
            raise ImageTooLargeError(path, width, height, max_pixels)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f'{path}: cannot read the file ({exc.strerror or exc})') from exc
    image = decode_image(data, str(path))
    if image.dtype not in _SUPPORTED_DTYPES or (image.dtype == np.uint16 and not allow_16bit):
        supported = '8- and 16-bit' if allow_16bit else 'only 8-bit'
        raise ImageError(f'{path}: {image.dtype.itemsize * 8}-bit {image.dtype} image; {supported} images are '
                         f'supported here (convert it to {"8 or 16" if allow_16bit else "8"} bits per channel first)')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ImageError(f'{path}: unsupported image shape {image.shape}')
    if not keep_alpha and channels in (2, 4):
        if np.any(image[:, :, -1] != np.iinfo(image.dtype).max):
            raise ImageError(f'{path}: image with a transparent alpha channel; save it without alpha first')
        image = np.ascontiguousarray(image[:, :, 0] if channels == 2 else image[:, :, :3])
    if grayscale_to_color and image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def _encode(image: np.ndarray, extension: str, params: list[int], target: str) -> bytes:
    """``cv2.imencode`` that raises ``ImageError`` naming ``target`` instead of returning ``False``."""
    ok, encoded = cv2.imencode(extension, image, params)
    if not ok:
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise ImageError(f'{target}: OpenCV cannot encode a {image.dtype} image with {channels} channel(s) '
                         f'as {extension}')
    return encoded.tobytes()


def encode_png(image: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of ``image``; the same image and level always give the same bytes.

    Args:
        image: ``HxW`` or ``HxWxC`` array in OpenCV's channel order.
        compress_level: zlib level 0-9; BasicSR's LMDBs use 1 (fast, about 10% larger than 9).
    """
    return _encode(image, '.png', [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)], '<png>')


def write_image(path: str | os.PathLike, image: np.ndarray, *, png_compress_level: int | None = None) -> None:
    """Encode ``image`` by the extension of ``path`` (PNG when it has none) and write it atomically.

    Args:
        path: the file to write; its folder is created if missing.
        image: an array as :func:`read_image` returns.
        png_compress_level: zlib level 0-9 of a PNG file; OpenCV's default when ``None``.

    Raises:
        ImageError: OpenCV cannot encode this kind of image in this format.
    """
    path = Path(path)
    extension = path.suffix or '.png'
    params = []
    if png_compress_level is not None:
        if extension.lower() != '.png':
            raise ValueError(f'{path}: png_compress_level applies to PNG files only')
        params = [cv2.IMWRITE_PNG_COMPRESSION, int(png_compress_level)]
    write_bytes_atomic(path, _encode(image, extension, params, str(path)))


def skipped_image_warnings(folder: str | os.PathLike) -> list[str]:
    """A line for each file directly inside ``folder`` that is an image the listing skips (a GIF)."""
    return [f'{path}: GIF images are not supported, skipped (convert it to PNG to include it)'
            for path in sorted(Path(folder).iterdir())
            if path.is_file() and path.suffix.lower() in UNREADABLE_IMAGE_EXTENSIONS]


def extra_frames_warning(path: str | os.PathLike) -> str | None:
    """A line when the image file holds several frames (multi-page TIFF, animated PNG or WebP), of which
    only the first is read; ``None`` otherwise, or when the header does not parse (reading it reports that)."""
    with _PILLOW_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as image:
                frames = getattr(image, 'n_frames', 1)
                kind = image.format
        except Exception:  # an unreadable file is reported by whoever reads it, in one line
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    if frames <= 1:
        return None
    what = 'pages' if kind == 'TIFF' else 'frames'
    return f'{path}: {kind} of {frames} {what}; only the first is read'


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Files with an image extension directly inside ``folder``, sorted by name.

    Raises:
        DataError: two files share a name up to the extension (``0001.png`` and ``0001.jpg``): the
            name is what identifies an image in a dataset (its LMDB key, its output file).
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


__all__ = ['IMAGE_EXTENSIONS', 'UNREADABLE_IMAGE_EXTENSIONS', 'ImageTooLargeError', 'decode_image', 'encode_png',
           'extra_frames_warning', 'image_size', 'list_images', 'read_image', 'skipped_image_warnings', 'write_image']
