"""Test a LESRCNN-family network with BasicSR: ``python -m lesrcnn_plugin.basicsr.test -opt YAML``
(``lesrcnn-test``), e.g. ``-opt options/test_lesrcnn_x2.yml``.

BasicSR's ``test_pipeline`` with the family registered (``lesrcnn_plugin.basicsr``): the metrics of
every test set are logged, and the log and SR images are written to ``results/<name>/`` under the
current working directory. Dataset roots and weights can be overridden with
``--force_yml datasets:test_1:dataroot_gt=... path:pretrain_network_g=...``. See docs/basicsr.md.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from . import launch  # importing this package registers the family into BasicSR's registries


def main(argv: Sequence[str] | None = None) -> int:
    """``lesrcnn-test`` (``lesrcnn_plugin.cli.basicsr_commands``); ``argv`` defaults to ``sys.argv[1:]``.
    Returns the exit code."""
    return launch.run(launch.test_pipeline, 'lesrcnn-test', __doc__, is_train=False, argv=argv)


if __name__ == '__main__':
    sys.exit(main())
