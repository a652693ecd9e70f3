"""The package's user errors: problems with a file, an option or a value that the user can fix.

Every ``lesrcnn-*`` command reports a ``LESRCNNError`` (and an ``OSError``) in one line naming the
file and what is wrong, and exits with status 1 (``lesrcnn_plugin.commands.run``). Each subclass
is also a ``ValueError``, the type Python code expects for a bad value.
"""
from __future__ import annotations

import os


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


class ImageTooLargeError(ImageError):
    """An image whose header claims more pixels than the caller accepts; it was not decoded.

    Attributes:
        width, height: the size the header gives.
        limit: the largest number of pixels accepted.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, limit: int) -> None:
        self.width, self.height, self.limit = width, height, limit
        super().__init__(f'{path}: {width}x{height} image ({width * height / 1e6:.1f} MP) is larger than the limit '
                         f'of {limit / 1e6:.1f} MP (not decoded)')


class NonFiniteOutputError(LESRCNNError):
    """A network's output holds NaN or Inf: written out, it would be a black or blotched image, and an
    exported model checked against it cannot pass."""


class RecipeError(ConfigError):
    """An unknown recipe name, or an installation without the recipes."""


class WeightsError(LESRCNNError):
    """A weights name or file that cannot be used: unknown name, failed download, wrong SHA256."""


class ParityError(LESRCNNError):
    """The ONNX model's output is further from PyTorch's than the tolerance."""


class MissingExtraError(LESRCNNError):
    """An optional dependency of the package (an extra of setup.py) is not installed."""


class OutputError(LESRCNNError):
    """An output a command will not write: it exists and ``--overwrite`` was not given, or it is an input."""


__all__ = ['CheckpointError', 'ConfigError', 'DataError', 'ImageError', 'ImageTooLargeError', 'LESRCNNError',
           'MissingExtraError', 'NonFiniteOutputError', 'OutputError', 'ParityError', 'RecipeError', 'RegistrationError',
           'WeightsError']
