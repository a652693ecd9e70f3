"""The LESRCNN family in plain PyTorch (no BasicSR or MMagic import).

``ARCHS`` maps each registered name to its class; the framework integrations register exactly these.
"""
import difflib

from ..errors import ConfigError
from .blocks import DIV2K_RGB_MEAN, SUPPORTED_SCALES, VARIANTS, LESRCNNBody
from .dual_kernel_lesrcnn_arch import DualKernelLESRCNN
from .lesrcnn_arch import LESRCNN
from .multiscale_lesrcnn_arch import MultiScaleLESRCNN

ARCHS = {cls.__name__: cls for cls in (LESRCNN, MultiScaleLESRCNN, DualKernelLESRCNN)}


def build_arch(name: str, **kwargs) -> LESRCNNBody:
    """Build a network of the family by its registered name, e.g. ``build_arch('LESRCNN', upscale=3)``."""
    if name not in ARCHS:
        close = difflib.get_close_matches(name, ARCHS, n=len(ARCHS), cutoff=0)
        raise ConfigError(f'unknown network type {name!r}; valid names: {", ".join(close)}')
    try:
        return ARCHS[name](**kwargs)
    except (TypeError, ValueError) as exc:  # an unknown or invalid argument: the caller's to fix
        raise ConfigError(f'{name}: {exc}') from None


__all__ = ['ARCHS', 'DIV2K_RGB_MEAN', 'SUPPORTED_SCALES', 'VARIANTS', 'DualKernelLESRCNN', 'LESRCNN', 'LESRCNNBody',
           'MultiScaleLESRCNN', 'build_arch']
