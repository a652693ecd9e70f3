"""The package's user errors: problems with a file, an option or a value that the user can fix.

Every ``lesrcnn-*`` command reports a ``LESRCNNError`` (and an ``OSError``) in one line naming the
file and what is wrong, and exits with status 1 (``lesrcnn_plugin.commands.run``). Each subclass
is also a ``ValueError``, the type Python code expects for a bad value.
"""
from __future__ import annotations


class LESRCNNError(ValueError):
    """A problem with the user's input: reported in one line, exit status 1."""


class CheckpointError(LESRCNNError):
    """A checkpoint that cannot be read, recognised or loaded strictly."""


class ImageError(LESRCNNError):
    """An image that cannot be read, written or processed; the message names the file."""


class DataError(LESRCNNError):
    """A dataset file or folder that cannot be read or written as asked; the message names it."""


class ConfigError(LESRCNNError):
    """An options file, a config or a command-line value that does not describe a valid run."""


class RegistrationError(LESRCNNError):
    """A framework's registry already holds a different object under a name this package needs."""


class MissingExtraError(LESRCNNError):
    """An optional dependency of the package (an extra of setup.py) is not installed."""


class OutputError(LESRCNNError):
    """An output a command will not write: it exists and ``--overwrite`` was not given, or it is an input."""


__all__ = ['CheckpointError', 'ConfigError', 'DataError', 'ImageError', 'LESRCNNError', 'MissingExtraError',
           'OutputError', 'RegistrationError']
