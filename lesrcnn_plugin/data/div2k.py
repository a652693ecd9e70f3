"""DIV2K for training: sub-images of HR and bicubic LR images in BasicSR-layout LMDBs.

The engine of ``lesrcnn-prepare-div2k`` (``lesrcnn_plugin/cli/prepare_div2k.py`` parses its
arguments). For each split, every HR image is cut into ``crop_size`` squares every ``step`` pixels
(:func:`~lesrcnn_plugin.data.subimages.crop_grid`) and the x``k`` LR image into the co-located
``crop_size/k`` squares; LR images come from DIV2K's files when present, else from the MATLAB-exact
bicubic resize. Sub-image ``i`` of image ``0001`` has the key ``0001_s{i:03d}`` in every database.

Sub-images are staged per image as PNG files (:class:`Staging`; each image's folder appears only once
complete), so a killed run resumes where it stopped; databases are then written in sorted key order
and renamed into place, so a rerun gives byte-identical ``data.mdb`` and ``meta_info.txt``.

Each database records how it was cut in ``lesrcnn_settings.json``; since the databases of a split
share keys, a run refuses to build beside databases cut on another grid, or to rebuild one with
other settings unless asked to (``replace``): see ``database_records``.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import DataError, ImageError
from ..fileio import errors_name, make_folder, make_sibling_dir, remove_stale_temporaries, write_text_atomic
from ..image_io import encode_png, list_images, read_image
from .database_records import DB_SETTINGS_FILE, database_settings, databases_to_replace
from .div2k_splits import SPLITS, Settings, Split, find_splits
from .lmdb_io import check_lmdb_keys, verify_lmdb, write_lmdb_records
from .matlab_resize import imresize, modcrop
from .subimages import crop_grid, extract, subimage_key

_SETTINGS_FILE = 'settings.json'
_KEYS_FILE = 'keys.txt'


def lr_file(lr_root: Path, scale: int, name: str) -> Path | None:
    """DIV2K's LR file for image ``name`` at ``scale`` (``X2/0001x2.png``, or ``X2/0001.png``), if any."""
    for candidate in (lr_root / f'X{scale}' / f'{name}x{scale}.png', lr_root / f'X{scale}' / f'{name}.png'):
        if candidate.is_file():
            return candidate
    return None


def load_lr(hr: np.ndarray, hr_path: Path, lr_root: Path, scale: int, settings: Settings) -> np.ndarray:
    """The x``scale`` LR image of ``hr``: DIV2K's file when present, else the MATLAB-exact resize.

    Raises:
        DataError: the LR folder exists but lacks this image, or the LR size disagrees with the HR size.
    """
    folder = lr_root / f'X{scale}'
    if settings.generate_lr or not folder.is_dir():
        return imresize(modcrop(hr, scale), 1 / scale)
    path = lr_file(lr_root, scale, hr_path.stem)
    if path is None:
        raise DataError(f'{folder}: no LR image for {hr_path} (expected {hr_path.stem}x{scale}.png); '
                        'add it, or use --generate-lr to make every LR image from the HR images')
    lr = read_image(path, allow_16bit=False, keep_alpha=False, grayscale_to_color=True)
    height, width = hr.shape[:2]
    if lr.shape[:2] not in ((height // scale, width // scale), (-(-height // scale), -(-width // scale))):
        raise DataError(f'{path}: LR size {lr.shape[1]}x{lr.shape[0]} does not match HR {hr_path} '
                        f'({width}x{height}) divided by {scale}')
    return lr


def image_records(hr_path: Path, lr_root: Path, settings: Settings) -> tuple[list[str], dict[str, list[bytes]]]:
    """Sub-images of one image: ``(keys, {label: [png_bytes per key]})``.

    Raises:
        ImageError, DataError: naming the file, for unreadable images, images smaller than a crop, or
            LR sizes that disagree with the HR size.
    """
    # What the networks train on: 8-bit BGR; 16-bit and transparent images are refused, gray replicated.
    hr = read_image(hr_path, allow_16bit=False, keep_alpha=False, grayscale_to_color=True)
    usable = modcrop(hr, settings.modulus)
    try:
        positions = crop_grid(usable.shape[0], usable.shape[1], settings.crop_size, settings.step,
                              settings.thresh_size)
    except DataError as exc:
        raise DataError(f'{hr_path}: {hr.shape[1]}x{hr.shape[0]} image, {exc}; remove it or lower --crop-size') from exc
    keys = [subimage_key(hr_path.stem, i) for i in range(1, len(positions) + 1)]

    def encode(crops):
        return [encode_png(crop, settings.compress_level) for crop in crops]

    records = {'HR': encode(extract(usable, positions, settings.crop_size))}
    for scale in settings.scales:
        lr = load_lr(hr, hr_path, lr_root, scale, settings)
        lr_size, _ = settings.lr_crop(scale)
        lr_positions = [(top // scale, left // scale) for top, left in positions]
        records[f'X{scale}'] = encode(extract(lr, lr_positions, lr_size))
    return keys, records


class Staging:
    """Per-image sub-image PNGs on disk: ``<root>/<image>/<label>/<key>.png`` plus ``keys.txt``.

    An image folder is built under a temporary name and renamed when complete, so after a crash
    every folder present is whole, and resuming just skips them.
    """

    def __init__(self, root: Path):
        self.root = root

    def prepare(self, settings: Settings) -> None:
        """Create the folder, drop images staged under other settings and unfinished image folders."""
        settings_path = self.root / _SETTINGS_FILE
        wanted = json.dumps(asdict(settings), sort_keys=True)
        if settings_path.is_file() and settings_path.read_text() != wanted:
            print(f'{self.root}: staged with other settings, starting over', file=sys.stderr)
            shutil.rmtree(self.root)
        make_folder(self.root)
        remove_stale_temporaries(self.root)
        if not settings_path.is_file():
            write_text_atomic(settings_path, wanted)

    def is_done(self, name: str) -> bool:
        """Whether image ``name`` is completely staged."""
        return (self.root / name / _KEYS_FILE).is_file()

    def store(self, name: str, keys: list[str], records: dict[str, list[bytes]]) -> None:
        """Stage the sub-images of image ``name`` atomically."""
        partial = make_sibling_dir(self.root / name, 'partial')
        try:
            with errors_name(self.root / name, partial):  # a full disk names the image's staging folder
                for label, values in records.items():
                    (partial / label).mkdir()
                    for key, value in zip(keys, values):
                        (partial / label / f'{key}.png').write_bytes(value)
                (partial / _KEYS_FILE).write_text(''.join(f'{key}\n' for key in keys))
                os.replace(partial, self.root / name)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise

    def records(self, names: list[str], label: str) -> Iterator[tuple[str, bytes]]:
        """``(key, png_bytes)`` of ``label`` for the images ``names``, in order."""
        for name in names:
            for key in (self.root / name / _KEYS_FILE).read_text().split():
                yield key, (self.root / name / label / f'{key}.png').read_bytes()


def _work(task):
    """Worker: sub-images of one image, staged on disk (returns only the keys) or returned."""
    hr_path, lr_root, settings, staging_root = task
    keys, records = image_records(hr_path, lr_root, settings)
    if staging_root is None:
        return hr_path.stem, keys, records
    Staging(staging_root).store(hr_path.stem, keys, records)
    return hr_path.stem, keys, None


def run_workers(tasks: list, workers: int, desc: str):
    """Run ``_work`` over ``tasks`` with a progress bar; in-process when ``workers`` is 1."""
    bar = tqdm(total=len(tasks), desc=desc, unit='img')
    try:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                yield _work(task)
                bar.update()
        else:
            with multiprocessing.Pool(workers) as pool:
                for result in pool.imap_unordered(_work, tasks):
                    yield result
                    bar.update()
    finally:
        bar.close()


def build_split(split: Split, settings: Settings, workers: int, staging_dir: Path | None, limit: int | None,
                overwrite: bool, keep_staging: bool, replace: bool = False) -> list[str]:
    """Build the missing (or, with ``overwrite``, all) databases of ``split``; returns report lines.

    Args:
        split: the split to build.
        settings: what the databases hold.
        workers: parallel processes cutting sub-images.
        staging_dir: where sub-images are staged (resumable); ``None`` keeps them in memory.
        limit: only the first ``limit`` images (for a quick try); all when ``None``.
        overwrite: rebuild databases that exist; otherwise they are kept and reported.
        keep_staging: keep the staged sub-images once the databases are written.
        replace: rebuild databases made with other settings (``databases_to_replace``); otherwise
            they are an error.
    """
    labels = split.db_labels(settings.scales)
    todo = [label for label in labels if overwrite or not split.db_path(label).exists()]
    replaced, notes = databases_to_replace(split, settings, todo, replace)
    todo = [label for label in labels if label in todo or label in replaced]
    report = [f'{split.db_path(label)}: exists, kept (--overwrite to rebuild)' for label in labels
              if label not in todo] + notes
    for label in labels:
        if label not in todo:  # a database kept must hold every key its meta_info.txt lists
            check_lmdb_keys(split.db_path(label))
    if not todo:
        return report
    hr_files = list_images(split.hr_dir)[:limit]
    if not hr_files:
        raise DataError(f'{split.hr_dir}: no images found')
    names = [path.stem for path in hr_files]

    staged: dict[str, tuple[list[str], dict]] = {}
    staging = None
    if staging_dir is not None:
        staging = Staging(staging_dir / split.prefix)
        staging.prepare(settings)
    tasks = [(path, split.lr_root, settings, None if staging is None else staging.root)
             for path in hr_files if staging is None or not staging.is_done(path.stem)]
    if staging is not None and len(tasks) < len(hr_files):
        report.append(f'{staging.root}: resuming, {len(hr_files) - len(tasks)} of {len(hr_files)} images staged')
    for name, keys, records in run_workers(tasks, workers, f'{split.prefix} sub-images'):
        if records is not None:
            staged[name] = (keys, records)

    def records_of(label):
        if staging is not None:
            return staging.records(names, label)
        return ((key, value) for name in names for key, value in zip(staged[name][0], staged[name][1][label]))

    for label in todo:
        path = split.db_path(label)
        total = None if staging is not None else sum(len(staged[name][0]) for name in names)
        record = json.dumps(database_settings(split, settings, label), indent=1, sort_keys=True) + '\n'
        # Closed on failure too, so that an error is reported on a line of its own.
        with tqdm(records_of(label), total=total, desc=f'write {path.name}', unit='img') as records:
            count = write_lmdb_records(path, records, settings.compress_level, overwrite=True,
                                       extra_files={DB_SETTINGS_FILE: record})
        report.append(f'{path}: {count} sub-images from {len(names)} images')
    if staging is not None and not keep_staging:
        shutil.rmtree(staging.root)
        if not any(staging.root.parent.iterdir()):
            staging.root.parent.rmdir()
    return report


def verify_split(split: Split, scales) -> list[str]:
    """Every key decodes, all databases hold the same keys, and HR sizes are k times LR sizes."""
    shapes = {label: verify_lmdb(split.db_path(label), progress=True) for label in split.db_labels(scales)}
    hr = shapes['HR']
    for scale in scales:
        label, path = f'X{scale}', split.db_path(f'X{scale}')
        if set(shapes[label]) != set(hr):
            missing = sorted(set(hr) ^ set(shapes[label]))[:3]
            raise DataError(f'{path} and {split.db_path("HR")} hold different keys (e.g. {missing})')
        for key, (height, width, channels) in shapes[label].items():
            if hr[key] != (height * scale, width * scale, channels):
                raise DataError(f'{path}[{key}]: LR {shapes[label][key]} is not HR {hr[key]} divided by {scale}')
    return [f'verified {split.db_path(label)}: {len(hr)} keys decode, HR = LR x scale'
            for label in split.db_labels(scales)]


def dry_run(split: Split, settings: Settings, limit: int | None) -> list[str]:
    """Counts and estimated sizes, from image headers and one encoded sample image; writes nothing."""
    from PIL import Image

    hr_files = list_images(split.hr_dir)[:limit]
    if not hr_files:
        raise DataError(f'{split.hr_dir}: no images found')
    count = 0
    problems = []
    for path in tqdm(hr_files, desc=f'{split.prefix} headers', unit='img'):
        try:
            with Image.open(path) as image:
                width, height = image.size
        except OSError as exc:
            problems.append(f'  {path}: unreadable ({exc})')
            continue
        height, width = height - height % settings.modulus, width - width % settings.modulus
        try:
            count += len(crop_grid(height, width, settings.crop_size, settings.step, settings.thresh_size))
        except DataError as exc:
            problems.append(f'  {path}: {exc}')
    # PNG size of real sub-images: encode those of the first usable image.
    for path in hr_files:
        try:
            keys, records = image_records(path, split.lr_root, settings)
            break
        except (DataError, ImageError):
            continue
    else:
        raise DataError(f'{split.hr_dir}: no usable image:\n' + '\n'.join(problems))
    lines = [f'{split.prefix}: {len(hr_files)} images in {split.hr_dir} -> {count} sub-images per database']
    for label in split.db_labels(settings.scales):
        source = 'HR' if label == 'HR' else (
            'generated (MATLAB bicubic)' if settings.generate_lr or not (split.lr_root / label).is_dir()
            else f'read from {split.lr_root / label}')
        side = settings.crop_size if label == 'HR' else settings.lr_crop(int(label[1:]))[0]
        per_image = sum(len(v) for v in records[label]) / len(keys)
        lines.append(f'  {split.db_path(label).name}: {count} x {side}x{side}, {source}, '
                     f'about {count * per_image / 1e9:.2f} GB (raw {count * side * side * 3 / 1e9:.2f} GB)')
    return lines + problems


__all__ = ['DB_SETTINGS_FILE', 'SPLITS', 'Settings', 'Split', 'Staging', 'build_split', 'database_settings',
           'databases_to_replace', 'dry_run', 'find_splits', 'image_records', 'load_lr', 'lr_file', 'run_workers',
           'verify_split']
