"""The arguments every ``lesrcnn-*`` command shares, and the guard on what it writes.

* The argument builders give every command the same flags, with choices taken from the package's
  own tables (``SUPPORTED_SCALES``, ``VARIANTS``, ``ARCHS``, the size presets).
* ``OutputGuard`` (with ``add_overwrite_argument``) keeps a command from writing over one of its
  inputs, ever, or over an existing file without ``--overwrite``.

How a command fails (``run``, one line and exit status 1) and stops when an extra is missing
(``require``, ``requires_extras``) is ``lesrcnn_plugin.commands``, which the framework integrations use
too; the registry checks of an options file (``check_constructor_options``, ``valid_names``) are
``lesrcnn_plugin.options_check``. Both are re-exported here for the commands.
"""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

# The tables of archs and complexity are imported where an argument is built: both import torch, which
# a command that never builds a network (lesrcnn-recipes list) must not wait for.
from ..commands import EXTRA_MODULES, describe, one_line, require, requires_extras, run
from ..errors import MissingExtraError, OutputError
from ..options_check import check_constructor_options, valid_names

if TYPE_CHECKING:
    from ..complexity import InputSize


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An ``argparse`` type: an integer no smaller than ``minimum`` (a usage error otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be at least {minimum}, got {value}')
        return value

    return parse


positive_int = int_at_least(1)


def add_scale_argument(parser, help_text: str) -> None:
    from ..archs import SUPPORTED_SCALES

    parser.add_argument('--scale', type=int, choices=SUPPORTED_SCALES, help=help_text)


def add_weights_arguments(parser, checkpoint_flags: tuple[str, ...] = ('checkpoint',),
                          checkpoint_help: str = 'weights: a file in any supported format (authors\', BasicSR, '
                                                 'MMagic, plain) or a registered name such as lesrcnn_x2') -> None:
    """The weights to load (``args.checkpoint``) and the overrides of what they tell: ``--arch``,
    ``--scale``, ``--variant``."""
    from ..archs import ARCHS, VARIANTS

    if checkpoint_flags[0].startswith('-'):
        parser.add_argument(*checkpoint_flags, dest='checkpoint', required=True, help=checkpoint_help)
    else:  # a positional argument, read as args.checkpoint whatever its name in the usage line
        parser.add_argument('checkpoint', metavar=checkpoint_flags[0], help=checkpoint_help)
    parser.add_argument('--arch', choices=sorted(ARCHS), help='network name (inferred from the weights when omitted)')
    add_scale_argument(parser, 'scale to run: picks the upsampler of a multi-scale network; checked otherwise')
    parser.add_argument('--variant', choices=sorted(VARIANTS),
                        help='LESRCNN ablation variant (needed for the ablations without an IRB)')


def add_size_arguments(parser, default_note: str = 'Default: ntire when no size is given') -> None:
    """Input sizes: ``--lr-size``, ``--hr-size`` (repeatable) and ``--preset``."""
    from ..complexity import PRESETS

    group = parser.add_argument_group('input sizes')
    group.add_argument('--lr-size', action='append', default=[], metavar='HxW', help='LR input size (repeatable)')
    group.add_argument('--hr-size', action='append', default=[], metavar='HxW',
                       help='HR output size, modcropped to the scale (repeatable)')
    group.add_argument('--preset', nargs='+', default=[], choices=sorted(PRESETS),
                       help='ntire: 256x256 LR; 720p: 1280x720 output; 256/512/1024: square HR outputs '
                            f'(the paper\'s runtime sizes). {default_note}')


def sizes_from_args(args: argparse.Namespace, scale: int) -> list[InputSize]:
    """The sizes asked for, in the order given; the NTIRE preset when none is."""
    from ..complexity import input_size, parse_size

    sizes = ([input_size(scale, lr=parse_size(text)) for text in args.lr_size]
             + [input_size(scale, hr=parse_size(text)) for text in args.hr_size]
             + [input_size(scale, preset=preset) for preset in args.preset])
    return sizes or [input_size(scale, preset='ntire')]


def output_arguments_check(parser: argparse.ArgumentParser, path: str | os.PathLike | None,
                           *inputs: str | os.PathLike) -> None:
    """Refuse (usage error) an output path that is one of the inputs: no input is ever overwritten."""
    if path is None:
        return
    for source in inputs:
        if source is not None and os.path.exists(source) and os.path.exists(path) \
                and os.path.samefile(source, path):
            parser.error(f'{path} is an input: choose another output')


def float_at_least(minimum: float) -> Callable[[str], float]:
    """An ``argparse`` type: a finite number no smaller than ``minimum`` (a usage error otherwise)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f'must be a finite number of at least {minimum:g}, got {text}')
        return value

    return parse


def add_overwrite_argument(parser: argparse.ArgumentParser, what: str = 'an existing output file') -> None:
    """``--overwrite``, read by ``OutputGuard``: replace existing outputs (never an input)."""
    parser.add_argument('--overwrite', action='store_true',
                        help=f'replace {what} (refused otherwise); an input is never overwritten')


def _file_identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` leads to, or ``None`` when there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


class OutputGuard:
    """Which outputs a command may write: never one of its inputs, an existing file only with ``--overwrite``.

    Inputs are recognised by identity (device and inode), so another spelling of an input's path, or
    a link to it, is that input. The inputs are looked at once, so a batch checks each output in
    constant time.

    Args:
        inputs: the files the command reads (a path that does not exist is ignored).
        overwrite: whether an existing output that is not an input may be replaced.
    """

    def __init__(self, inputs: Iterable[str | os.PathLike], overwrite: bool) -> None:
        self.overwrite = overwrite
        self._inputs: dict[tuple[int, int], str] = {}
        for path in inputs:
            identity = _file_identity(path)
            if identity is not None:
                self._inputs.setdefault(identity, os.fspath(path))

    def check(self, path: str | os.PathLike) -> None:
        """Raise ``OutputError`` naming ``path`` if it must not be written."""
        if not os.path.lexists(path):
            return
        source = self._inputs.get(_file_identity(path))
        if source is not None:
            raise OutputError(f'{path}: is the input {source}; an input is never overwritten, choose another output')
        if not self.overwrite:
            raise OutputError(f'{path}: exists, not replaced (pass --overwrite to replace it)')


__all__ = ['EXTRA_MODULES', 'MissingExtraError', 'OutputError', 'OutputGuard', 'add_overwrite_argument',
           'add_scale_argument', 'add_size_arguments', 'add_weights_arguments', 'check_constructor_options', 'describe',
           'float_at_least', 'int_at_least', 'one_line', 'output_arguments_check', 'positive_int', 'require',
           'requires_extras', 'run', 'sizes_from_args', 'valid_names']
