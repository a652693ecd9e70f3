"""Deprecated spelling of ``python -m lesrcnn_plugin.basicsr.test`` (``lesrcnn-test``), kept for one release.

It says so in one line on standard error, then runs ``lesrcnn-test``, which checks the "basicsr" extra.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from .commands import requires_extras

DEPRECATION = ('lesrcnn_plugin.test is deprecated and goes in the next release: use '
               'python -m lesrcnn_plugin.basicsr.test (or lesrcnn-test)')


@requires_extras('basicsr', command='lesrcnn-test')
def main(argv: Sequence[str] | None = None) -> int:
    """``lesrcnn_plugin.basicsr.test.main``, after the deprecation line."""
    print(DEPRECATION, file=sys.stderr)
    from .basicsr.test import main as basicsr_main

    return basicsr_main(argv)


if __name__ == '__main__':
    sys.exit(main())
