"""The LESRCNN family in plain PyTorch (no BasicSR or MMagic import).

``ARCHS`` maps each registered name to its class; the framework integrations register exactly these.
"""
from .blocks import DIV2K_RGB_MEAN, VARIANTS, LESRCNNBody
from .dual_kernel_lesrcnn_arch import DualKernelLESRCNN
from .lesrcnn_arch import LESRCNN
from .multiscale_lesrcnn_arch import MultiScaleLESRCNN

ARCHS = {cls.__name__: cls for cls in (LESRCNN, MultiScaleLESRCNN, DualKernelLESRCNN)}


def build_arch(name: str, **kwargs) -> LESRCNNBody:
    """Build a network of the family by its registered name, e.g. ``build_arch('LESRCNN', upscale=3)``."""
    if name not in ARCHS:
        raise KeyError(f'unknown network {name!r}; choose one of {sorted(ARCHS)}')
    return ARCHS[name](**kwargs)


__all__ = ['ARCHS', 'DIV2K_RGB_MEAN', 'VARIANTS', 'DualKernelLESRCNN', 'LESRCNN', 'LESRCNNBody',
           'MultiScaleLESRCNN', 'build_arch']
