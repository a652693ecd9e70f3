"""Test a LESRCNN-family network with BasicSR: ``python -m lesrcnn_plugin.test -opt options/test_lesrcnn_x2.yml``.

BasicSR's ``test_pipeline`` with the family registered (``lesrcnn_plugin.basicsr``): the metrics of
every test set are logged, and the log and SR images are written to ``results/<name>/`` under the
current working directory. Dataset roots and weights can be overridden with
``--force_yml datasets:test_1:dataroot_gt=... path:pretrain_network_g=...``. See docs/basicsr.md.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from lesrcnn_plugin.cli._common import requires_extras


@requires_extras('basicsr', command='lesrcnn-test')
def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``lesrcnn-test``; ``argv`` defaults to ``sys.argv[1:]``. Returns the exit code."""
    from lesrcnn_plugin.basicsr import launch  # registers the family into BasicSR's registries

    return launch.run(launch.test_pipeline, 'lesrcnn-test', __doc__, is_train=False, argv=argv)


if __name__ == '__main__':
    sys.exit(main())
