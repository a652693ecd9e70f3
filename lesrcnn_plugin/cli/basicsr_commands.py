"""Console scripts ``lesrcnn-train`` and ``lesrcnn-test``.

The programs are ``lesrcnn_plugin.basicsr.train`` and ``lesrcnn_plugin.basicsr.test`` (``python -m``
runs them too); importing that package registers the family into BasicSR, so it fails without BasicSR
installed. These entry points check the "basicsr" extra first, so that a missing one is reported in
one line naming the extra.
"""
from __future__ import annotations

from ..commands import requires_extras


@requires_extras('basicsr', command='lesrcnn-train')
def train(argv=None) -> int:
    """``lesrcnn-train``: see ``lesrcnn_plugin.basicsr.train``."""
    from ..basicsr.train import main

    return main(argv)


@requires_extras('basicsr', command='lesrcnn-test')
def test(argv=None) -> int:
    """``lesrcnn-test``: see ``lesrcnn_plugin.basicsr.test``."""
    from ..basicsr.test import main

    return main(argv)
