"""Console scripts ``lesrcnn-mmagic-train`` and ``lesrcnn-mmagic-test``.

The programs are ``lesrcnn_plugin.mmagic.train`` and ``lesrcnn_plugin.mmagic.test``; importing that
package registers the family into MMagic, so it fails without MMagic installed. These entry points
check the "mmagic" extra first, so that a missing one is reported in one line naming the extra.
"""
from __future__ import annotations

from ..commands import requires_extras


@requires_extras('mmagic', command='lesrcnn-mmagic-train')
def train(argv=None) -> int:
    """``lesrcnn-mmagic-train``: see ``lesrcnn_plugin.mmagic.train``."""
    from ..mmagic.train import main

    return main(argv)


@requires_extras('mmagic', command='lesrcnn-mmagic-test')
def test(argv=None) -> int:
    """``lesrcnn-mmagic-test``: see ``lesrcnn_plugin.mmagic.test``."""
    from ..mmagic.test import main

    return main(argv)
