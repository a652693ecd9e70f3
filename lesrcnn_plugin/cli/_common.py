"""What every ``lesrcnn-*`` command shares: how it fails, and the arguments it takes.

* ``run(body)`` runs a command's work. A ``LESRCNNError`` (a bad file, option or value) or an
  ``OSError`` (a missing file, a full disk, a read-only folder) ends it with one line on standard
  error, naming the path and what is wrong, and exit status 1. Usage errors stay argparse's (exit 2).
* ``OutputGuard`` (with ``add_overwrite_argument``) keeps a command from writing over one of its
  inputs, ever, or over an existing file without ``--overwrite``. ``check_constructor_options``
  checks a ``type=`` entry of an options file or config against its registry and constructor.
* The argument builders give every command the same flags, with choices taken from the package's
  own tables (``SUPPORTED_SCALES``, ``VARIANTS``, ``ARCHS``, the size presets).
* ``require(extra)`` (and the ``requires_extras`` decorator for a ``main`` not run by ``run``) stops a
  command whose optional dependencies are missing, before it does any work, with one line naming
  the extra to install.
"""
from __future__ import annotations

import argparse
import difflib
import functools
import importlib.util
import inspect
import math
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

# The tables of archs and complexity are imported where an argument is built: both import torch, which
# a command that never builds a network (lesrcnn-recipes list) must not wait for.
from ..errors import ConfigError, LESRCNNError

if TYPE_CHECKING:
    from ..complexity import InputSize

#: The modules each extra of setup.py provides, by import name: what ``require`` checks.
EXTRA_MODULES = {
    'basicsr': ('basicsr',),
    'mmagic': ('mmagic', 'mmengine', 'mmcv'),
    'onnx': ('onnx', 'onnxruntime'),
    'plots': ('matplotlib',),
    'demo': ('skimage',),
    'spandrel': ('spandrel',),
}


class MissingExtraError(LESRCNNError):
    """An optional dependency of the package (an extra of setup.py) is not installed."""


def require(extra: str, *modules: str, needed_by: str | None = None) -> None:
    """Raise ``MissingExtraError`` unless ``modules`` (default: the extra's, ``EXTRA_MODULES``) import.

    ``needed_by`` names what needs them (a command, an option) in the message, e.g.
    ``lesrcnn-export-onnx needs the "onnx" extra (onnxruntime is not installed): pip install
    "lesrcnn-plugin[onnx]"``. ``importlib.util.find_spec`` looks the modules up without importing
    them, so the check is fast and has no side effects.
    """
    missing = [name for name in modules or EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]
    if missing:
        verb = 'is' if len(missing) == 1 else 'are'
        raise MissingExtraError(f'{needed_by or "this"} needs the "{extra}" extra ({", ".join(missing)} {verb} '
                                f'not installed): pip install "lesrcnn-plugin[{extra}]"')


def requires_extras(*extras: str, command: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a command's ``main``: check ``extras`` before anything else runs, even ``--help``.

    For a ``main`` whose module or work imports the extra's packages outside ``run``; a missing one
    is reported as ``run`` reports errors (one line, exit status 1).
    """
    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def checked(*args, **kwargs) -> int:
            def check() -> None:
                for extra in extras:
                    require(extra, needed_by=command)

            return run(check) or main(*args, **kwargs)

        return checked

    return decorate


def one_line(text: str) -> str:
    """``text`` with its control and line-break characters written as Python escapes (``\\n``, ``\\x1b``).

    A file name may hold a newline or a terminal escape sequence: printed as it is, it would split
    an error over several lines, or forge an ``error:`` line of its own.
    """
    return ''.join(repr(char)[1:-1] if unicodedata.category(char) in ('Cc', 'Zl', 'Zp') else char for char in text)


def describe(error: BaseException) -> str:
    """One line for a user error: an ``OSError`` names its path (both, for a rename) and the reason."""
    if isinstance(error, OSError) and error.filename is not None:
        target = f'{error.filename} -> {error.filename2}' if error.filename2 else str(error.filename)
        return f'{target}: {error.strerror or error}'
    return str(error)


def run(body: Callable[[], int | None], prog: str | None = None) -> int:
    """Run a command's work and return its exit status: 0, the status ``body`` returns, or 1 for a
    user error, reported in one line (``error: ...``, or ``<prog>: error: ...`` when ``prog`` is given)."""
    prefix = f'{prog}: error: ' if prog else 'error: '
    try:
        return body() or 0
    except (LESRCNNError, OSError) as exc:
        print(prefix + one_line(describe(exc)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(prefix + 'interrupted', file=sys.stderr)
        return 130


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


class OutputError(LESRCNNError):
    """An output a command will not write: it exists and ``--overwrite`` was not given, or it is an input."""


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


def valid_names(word: str, names: Iterable[str], limit: int = 20) -> str:
    """``names`` for a message: those close to ``word`` first (``difflib``, best first), then the rest
    sorted, at most ``limit`` of them (MMagic registers hundreds) and how many more there are."""
    names = sorted(set(names))
    close = difflib.get_close_matches(word, names, n=len(names), cutoff=0.6)
    ordered = close + [name for name in names if name not in close]
    more = f' and {len(ordered) - limit} more' if len(ordered) > limit else ''
    return ', '.join(ordered[:limit]) + more


def check_constructor_options(options: object, key: str, source: str | os.PathLike,
                              lookup: Callable[[str], Callable | None], names: Iterable[str],
                              kind: str = 'network') -> None:
    """Check a ``dict(type=NAME, **arguments)`` entry of an options file or config before anything is built.

    ``NAME`` must be registered and every argument a parameter of its constructor (unless it takes
    ``**kwargs``); parameters without a default must be given. Entries starting with ``_`` (mmengine's
    ``_scope_``) are the framework's, not the constructor's.

    Args:
        options: the entry, e.g. ``opt['network_g']``.
        key: where it sits in the file, for the message (``network_g``, ``model.generator``).
        source: the file.
        lookup: the registered class of a name, or ``None``.
        names: every registered name, listed (closest first) when ``NAME`` is not one of them.
        kind: what the registry holds, for the message.

    Raises:
        ConfigError: one line naming the file, the key and the valid names.
    """
    if not isinstance(options, Mapping) or not isinstance(options.get('type'), str):
        raise ConfigError(f'{source}: {key} must be a mapping with a "type" naming the {kind}')
    name = options['type']
    target = lookup(name)
    if target is None:
        raise ConfigError(f'{source}: {key}.type {name!r} is not a registered {kind}; valid names: '
                          + valid_names(name, names))
    parameters = inspect.signature(target).parameters
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()):
        return
    accepted = [parameter_name for parameter_name, parameter in parameters.items()
                if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    for argument in options:
        if argument != 'type' and not argument.startswith('_') and argument not in accepted:
            raise ConfigError(f'{source}: {key}.{argument} is not an argument of {name}; valid names: '
                              + valid_names(argument, accepted))
    missing = [parameter_name for parameter_name in accepted if parameter_name not in options
               and parameters[parameter_name].default is inspect.Parameter.empty]
    if missing:
        raise ConfigError(f'{source}: {key} lacks {", ".join(missing)}, which {name} needs')


__all__ = ['EXTRA_MODULES', 'MissingExtraError', 'OutputError', 'OutputGuard', 'add_overwrite_argument',
           'add_scale_argument', 'add_size_arguments', 'add_weights_arguments', 'check_constructor_options', 'describe',
           'float_at_least', 'int_at_least', 'one_line', 'output_arguments_check', 'positive_int', 'require',
           'requires_extras', 'run', 'sizes_from_args', 'valid_names']
