"""Benchmark sets (Set5, Set14, BSD100, Urban100, ...) in the layout the test configs read.

The engine of ``lesrcnn-prepare-testsets`` (``lesrcnn_plugin/cli/prepare_testsets.py`` parses its
arguments and lists the layouts recognised). :func:`find_sets` recognises a set folder's layout and
pairs each HR image with its LR image at every scale (``None`` where the LR image is to be made with
the MATLAB-exact bicubic resize); :func:`write_scale` writes ``OUTPUT/<Set>/X{k}/{HR,LR}/<name>.png``,
3-channel 8-bit, HR cropped to exactly k times the LR size, each ``X{k}`` folder under a temporary
name renamed into place when complete. Each set found lists, as warnings, the GIFs skipped in its
folders and the images of several frames (multi-page TIFF) of which only the first is read.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import DataError
from ..fileio import errors_name, make_folder, make_sibling_dir, remove_stale_temporaries, replace_dir
from ..image_io import extra_frames_warning, list_images, read_image, skipped_image_warnings, write_image
from .matlab_resize import imresize, modcrop

# Names found in the wild (lower case, up to the first '_') -> the canonical set name.
SET_NAMES = {'set5': 'Set5', 'set14': 'Set14', 'b100': 'BSD100', 'bsd100': 'BSD100', 'bsds100': 'BSD100',
             'urban100': 'Urban100', 'manga109': 'Manga109'}


@dataclass
class Pair:
    """One test image at one scale: its name, HR file and LR file (``None``: LR is generated)."""
    name: str
    hr_path: Path
    lr_path: Path | None = None


@dataclass
class FoundSet:
    """A set folder whose layout was recognised.

    Attributes:
        name: canonical set name (``Set5``, ``BSD100``, ...).
        folder: the set folder.
        layout: human-readable layout name.
        pairs: ``{scale: [Pair, ...]}``.
        notes: what was noticed while detecting (generated LR, missing scale folders).
        warnings: a line per image file skipped (GIF) or read as its first frame only (multi-page TIFF).
    """
    name: str
    folder: Path
    layout: str
    pairs: dict[int, list[Pair]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def canonical_set_name(folder_name: str) -> str:
    """``Set5_SRF`` -> ``Set5``, ``B100`` -> ``BSD100``; unknown names are kept."""
    return SET_NAMES.get(folder_name.split('_')[0].lower(), folder_name)


def _paired(hr_files: list[Path], lr_dir: Path, lr_name) -> list[Pair]:
    """Pair each HR file with ``lr_dir / lr_name(stem)`` (any image extension).

    Raises:
        DataError: an HR image has no LR counterpart in ``lr_dir``.
    """
    lr_by_stem = {path.stem: path for path in list_images(lr_dir)}
    pairs = []
    for hr_path in hr_files:
        lr_path = lr_by_stem.get(lr_name(hr_path.stem))
        if lr_path is None:
            raise DataError(f'{lr_dir}: no LR image for {hr_path} (expected {lr_name(hr_path.stem)}.png)')
        pairs.append(Pair(hr_path.stem, hr_path, lr_path))
    return pairs


def _hr_folder_layout(found: FoundSet, hr_dir: Path, lr_dir_of, lr_name_of, scales) -> FoundSet:
    """Layouts with one HR folder and one LR folder per scale (EDSR, BasicSR)."""
    hr_files = list_images(hr_dir)
    if not hr_files:
        raise DataError(f'{hr_dir}: no images found')
    for scale in scales:
        lr_dir = lr_dir_of(scale)
        if lr_dir.is_dir():
            found.pairs[scale] = _paired(hr_files, lr_dir, lr_name_of(scale))
        else:
            found.pairs[scale] = [Pair(path.stem, path) for path in hr_files]
            found.notes.append(f'x{scale}: no {lr_dir.name} folder, LR generated')
    return found


def _srf_layout(found: FoundSet, scale_dirs: dict[int, Path], scales) -> FoundSet:
    """SelfExSR layout: per-scale folders of ``<name>_SRF_<k>_HR.png`` / ``..._LR.png`` files."""
    available: dict[int, dict[str, dict[str, Path]]] = {}
    for scale, folder in scale_dirs.items():
        files: dict[str, dict[str, Path]] = {}
        pattern = re.compile(rf'^(.+)_SRF_{scale}_(HR|LR)$')
        for path in list_images(folder):
            match = pattern.match(path.stem)
            if match:  # other files there are other methods' results (_bicubic, _SelfExSR, ...)
                files.setdefault(match.group(1), {})[match.group(2)] = path
        available[scale] = files
    for scale in scales:
        if scale in available:
            pairs = []
            for name, kinds in sorted(available[scale].items()):
                if 'HR' not in kinds or 'LR' not in kinds:
                    missing = 'HR' if 'HR' not in kinds else 'LR'
                    raise DataError(f'{scale_dirs[scale]}: {name}_SRF_{scale}_{missing}.png is missing')
                pairs.append(Pair(name, kinds['HR'], kinds['LR']))
            found.pairs[scale] = pairs
        else:
            # HR images from another scale's folder; the largest one loses the least to modcrops.
            sources = {}
            for files in available.values():
                for name, kinds in files.items():
                    if 'HR' in kinds:
                        sources.setdefault(name, []).append(kinds['HR'])
            found.pairs[scale] = [Pair(name, max(paths, key=lambda p: p.stat().st_size))
                                  for name, paths in sorted(sources.items())]
            found.notes.append(f'x{scale}: no x{scale} folder, LR generated from the other scales\' HR images')
    return found


def _file_warnings(found: FoundSet) -> list[str]:
    """A line per GIF skipped in the folders the set's images come from, and per image of several frames."""
    files = sorted({path for pairs in found.pairs.values() for pair in pairs
                    for path in (pair.hr_path, pair.lr_path) if path is not None})
    skipped = [line for folder in sorted({path.parent for path in files}) for line in skipped_image_warnings(folder)]
    return skipped + [line for line in map(extra_frames_warning, files) if line is not None]


def detect_set(folder: Path, scales, name: str | None = None) -> FoundSet | None:
    """Recognise the layout of a set folder and list its warnings; ``None`` if it has none of the known layouts."""
    found = _detect_layout(folder, scales, name)
    if found is not None:
        found.warnings = _file_warnings(found)
    return found


def _detect_layout(folder: Path, scales, name: str | None) -> FoundSet | None:
    """The set in ``folder`` if its layout is one of the known ones (see the command's help)."""
    found = FoundSet(name or canonical_set_name(folder.name), folder, '')
    if (folder / 'HR').is_dir():
        found.layout = 'EDSR (HR + LR_bicubic/X{k})'
        return _hr_folder_layout(found, folder / 'HR', lambda k: folder / 'LR_bicubic' / f'X{k}',
                                 lambda k: (lambda stem: f'{stem}x{k}'), scales)
    if (folder / 'GTmod12').is_dir():
        found.layout = 'BasicSR (GTmod12 + LRbicx{k})'
        return _hr_folder_layout(found, folder / 'GTmod12', lambda k: folder / f'LRbicx{k}',
                                 lambda k: (lambda stem: stem), scales)
    scale_dirs = {}
    for child in folder.iterdir() if folder.is_dir() else ():
        match = re.fullmatch(r'(?:x|image_SRF_)(\d+)', child.name)
        if child.is_dir() and match:
            scale_dirs[int(match.group(1))] = child
    if scale_dirs:
        found.layout = 'SelfExSR (x{k}/ or image_SRF_{k}/ with *_SRF_{k}_HR/LR)'
        return _srf_layout(found, scale_dirs, scales)
    if folder.is_dir() and list_images(folder):
        found.layout = 'HR only (images in the set folder)'
        found.pairs = {scale: [Pair(path.stem, path) for path in list_images(folder)] for scale in scales}
        found.notes.append('LR generated at every scale')
        return found
    return None


def find_sets(source: Path, scales, name: str | None = None) -> list[FoundSet]:
    """The sets in ``source``: itself if it is a set folder, else its sub-folders that are.

    Raises:
        DataError: ``source`` is missing or holds no recognised set.
    """
    if not source.is_dir():
        raise DataError(f'{source}: not a folder')
    found = detect_set(source, scales, name)
    if found is not None:
        return [found]
    sets = [found for child in sorted(source.iterdir()) if child.is_dir()
            for found in [detect_set(child, scales)] if found is not None]
    if not sets:
        raise DataError(f'{source}: no test set found (expected HR/ + LR_bicubic/X{{k}}/, GTmod12/ + LRbicx{{k}}/, '
                        'x{k}/*_SRF_{k}_HR.png, or images), here or in its sub-folders')
    if name is not None:
        raise DataError(f'--name applies to one set folder, but {source} holds {len(sets)} sets')
    return sets


def collect_sets(sources: list[Path], scales, name: str | None = None,
                 only: list[str] | None = None) -> list[FoundSet]:
    """The sets in every source (see :func:`find_sets`), restricted to the set names ``only``.

    Raises:
        DataError: ``name`` is given for several sources, or one set is found more than once.
    """
    if name is not None and len(sources) != 1:
        raise DataError('--name applies to a single SOURCE')
    found_sets = [found for source in sources for found in find_sets(source, scales, name)]
    if only:
        found_sets = [found for found in found_sets if found.name in only]
    names = [found.name for found in found_sets]
    duplicates = sorted({set_name for set_name in names if names.count(set_name) > 1})
    if duplicates:
        folders = [str(found.folder) for found in found_sets if found.name in duplicates]
        raise DataError(f'set {duplicates[0]} found more than once ({", ".join(folders)}); '
                        'pass one of them, or use --name')
    return found_sets


def make_pair(pair: Pair, scale: int) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """HR and LR arrays of one pair, 3-channel, HR cropped to exactly ``scale`` times LR.

    Returns:
        ``(hr, lr, notes)`` with ``notes`` a set of words (``gray``, ``cropped``) for the report.

    Raises:
        ImageError: an unreadable or unsupported (16-bit, transparent) image.
        DataError: LR and HR sizes that disagree.
    """
    notes = set()
    hr = read_image(pair.hr_path, allow_16bit=False, keep_alpha=False)
    if hr.ndim == 2:
        notes.add('gray')
        hr = cv2.cvtColor(hr, cv2.COLOR_GRAY2BGR)
    if pair.lr_path is None:
        cropped = modcrop(hr, scale)
        lr = imresize(cropped, 1 / scale)
    else:
        lr = read_image(pair.lr_path, allow_16bit=False, keep_alpha=False, grayscale_to_color=True)
        height, width = hr.shape[:2]
        if (height // scale, width // scale) != lr.shape[:2]:
            raise DataError(f'{pair.lr_path}: LR size {lr.shape[1]}x{lr.shape[0]} does not match HR {pair.hr_path} '
                            f'({width}x{height}) at x{scale} (expected {width // scale}x{height // scale})')
        cropped = hr[:lr.shape[0] * scale, :lr.shape[1] * scale]
    if cropped.shape != hr.shape:
        notes.add('cropped')
    return cropped, lr, notes


def write_scale(found: FoundSet, scale: int, output: Path) -> str:
    """Write ``OUTPUT/<Set>/X{k}/{HR,LR}``, replacing an existing folder only once complete; returns a report line.

    A failed write (a full disk, a read-only folder) raises an ``OSError`` naming ``X{k}``, not the
    temporary folder it was written in, which is removed.
    """
    target = output / found.name / f'X{scale}'
    with errors_name(target, target.parent):
        make_folder(target.parent)
    remove_stale_temporaries(target.parent, target.name)
    tmp = make_sibling_dir(target, 'tmp')
    counts = {'gray': 0, 'cropped': 0}
    try:
        with errors_name(target, tmp):
            for pair in tqdm(found.pairs[scale], desc=f'{found.name} x{scale}', unit='img', leave=False):
                hr, lr, notes = make_pair(pair, scale)
                write_image(tmp / 'HR' / f'{pair.name}.png', hr, png_compress_level=3)
                write_image(tmp / 'LR' / f'{pair.name}.png', lr, png_compress_level=3)
                for note in notes:
                    counts[note] += 1
            replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    source = 'LR generated (MATLAB bicubic)' if found.pairs[scale][0].lr_path is None else 'LR read'
    return (f'  x{scale}: {len(found.pairs[scale])} images, {source}; {counts["gray"]} grayscale -> 3-channel; '
            f'{counts["cropped"]} HR cropped to LR*{scale} -> {target}')


__all__ = ['FoundSet', 'Pair', 'SET_NAMES', 'canonical_set_name', 'collect_sets', 'detect_set', 'find_sets',
           'make_pair', 'write_scale']
