"""What each DIV2K database records of how it was cut, and the check that keeps a split's databases on one grid.

Each database keeps ``lesrcnn_settings.json`` (``DB_SETTINGS_FILE``) inside its folder. The databases of
a split share keys (sub-image ``0001_s005`` must be the same crop in each), so ``databases_to_replace``
refuses to build beside databases cut on another grid, or to rebuild one with other settings unless
asked to (``replace``).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from .div2k_splits import Settings, Split

#: The record each database keeps of how it was made (``database_settings``), inside its folder.
DB_SETTINGS_FILE = 'lesrcnn_settings.json'
#: Settings that make a key name the same crop in every database of a split.
_GRID_SETTINGS = ('crop_size', 'step', 'thresh_size', 'scales_lcm')


def database_settings(split: Split, settings: Settings, label: str) -> dict:
    """How this run makes database ``label``: its crop grid, its scale and where its LR images come from."""
    record = {'crop_size': settings.crop_size, 'step': settings.step, 'thresh_size': settings.thresh_size,
              'scales_lcm': settings.modulus, 'scale': 1 if label == 'HR' else int(label[1:])}
    if label != 'HR':
        generated = settings.generate_lr or not (split.lr_root / label).is_dir()
        record['lr_source'] = 'generated' if generated else 'files'
    return record


def existing_databases(split: Split) -> dict[str, Path]:
    """The split's databases on disk, by label (``HR``, ``X2``, ...), whatever scales this run asks for."""
    found = {'HR': split.db_path('HR')} if split.db_path('HR').exists() else {}
    lr_prefix, suffix = f'{split.prefix}_LR_bicubic_X', '_sub.lmdb'
    for path in sorted(split.output.glob(f'{lr_prefix}*{suffix}')):
        scale = path.name[len(lr_prefix):-len(suffix)]
        if scale.isdigit():
            found[f'X{scale}'] = path
    return found


def databases_to_replace(split: Split, settings: Settings, todo: list[str],
                         replace: bool) -> tuple[list[str], list[str]]:
    """Check the split's existing databases against this run's settings; returns (labels to rebuild, notes).

    The databases of a split share keys: sub-image ``0001_s005`` must be the same crop in each. So a
    database that stays must have been cut on this run's grid (``_GRID_SETTINGS``), and one this run
    rebuilds (``todo``) must not change any setting, unless ``replace`` allows it; with ``replace``,
    a database of this run's scales cut on another grid is rebuilt too. A database without a record
    (made by another tool or an older version) cannot be checked, and a note says so.

    Raises:
        DataError: naming the database and its first differing setting, when no rebuild is allowed.
    """
    labels = split.db_labels(settings.scales)
    rebuild, notes = [], []
    for label, path in existing_databases(split).items():
        record_path = path / DB_SETTINGS_FILE
        if not record_path.is_file():
            if label not in todo:
                notes.append(f'{path}: no {DB_SETTINGS_FILE} (made by another tool or an older version): its '
                             'settings cannot be checked against this run\'s (--verify checks its contents)')
            continue
        try:
            recorded = json.loads(record_path.read_text(encoding='utf-8'))
        except (OSError, ValueError) as exc:
            raise DataError(f'{record_path}: unreadable ({exc}); remove the database or rebuild it') from None
        wanted = database_settings(split, settings, label)
        compared = wanted if label in todo else _GRID_SETTINGS
        differences = [f'{key} {recorded.get(key)!r} (this run: {wanted[key]!r})'
                       for key in compared if recorded.get(key) != wanted[key]]
        if not differences:
            continue
        if replace and label in labels:
            if label not in todo:
                rebuild.append(label)
            continue
        hint = ('pass --replace to rebuild it with this run\'s settings' if label in labels else
                f'scale {label[1:]} is not in --scales: add it and pass --replace, or remove the database')
        raise DataError(f'{path}: built with {differences[0]}; {hint}')
    return rebuild, notes


__all__ = ['DB_SETTINGS_FILE', 'database_settings', 'databases_to_replace', 'existing_databases']
