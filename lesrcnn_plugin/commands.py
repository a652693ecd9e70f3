"""How every command of the package ends, the ``lesrcnn-*`` commands and the framework entry points alike.

* ``run(body)`` runs a command's work. A ``LESRCNNError`` (a bad file, option or value) or an
  ``OSError`` (a missing file, a full disk, a read-only folder) ends it with one line on standard
  error, naming the path and what is wrong, and exit status 1. Usage errors stay argparse's (exit 2).
* ``require(extra)`` (and the ``requires_extras`` decorator for a ``main`` not run by ``run``) stops a
  command whose optional dependencies are missing, before it does any work, with one line naming
  the extra to install.

It sits at the bottom of the package (docs/architecture.md): the integrations' entry points
(``lesrcnn_plugin.basicsr.launch``, ``lesrcnn_plugin.mmagic.train``) use it as the CLI does, without
importing the CLI. The argument builders are the CLI's own (``lesrcnn_plugin.cli._common``).
"""
from __future__ import annotations

import functools
import importlib.util
import sys
import unicodedata
from collections.abc import Callable

from .errors import LESRCNNError, MissingExtraError

#: The modules each extra of setup.py provides, by import name: what ``require`` checks.
EXTRA_MODULES = {
    'basicsr': ('basicsr',),
    'mmagic': ('mmagic', 'mmengine', 'mmcv'),
    'onnx': ('onnx', 'onnxruntime'),
    'plots': ('matplotlib',),
    'demo': ('skimage',),
    'spandrel': ('spandrel',),
}


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


__all__ = ['EXTRA_MODULES', 'describe', 'one_line', 'require', 'requires_extras', 'run']
