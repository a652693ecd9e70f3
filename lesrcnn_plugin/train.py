"""Train a LESRCNN-family network with BasicSR: ``python -m lesrcnn_plugin.train -opt options/train_lesrcnn_x2.yml``.

BasicSR's ``train_pipeline`` with the family registered (``lesrcnn_plugin.basicsr``), writing
``experiments/<name>/`` and ``tb_logger/<name>/`` under the current working directory. BasicSR's
flags pass through: ``--auto_resume``, ``--debug``, ``--launcher pytorch`` (under
``torchrun --nproc_per_node=N -m lesrcnn_plugin.train ...``), ``--force_yml key:key=value``.
See docs/basicsr.md.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from lesrcnn_plugin.cli._common import requires_extras


@requires_extras('basicsr', command='lesrcnn-train')
def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``lesrcnn-train``; ``argv`` defaults to ``sys.argv[1:]``. Returns the exit code."""
    from lesrcnn_plugin.basicsr import launch  # registers the family into BasicSR's registries

    return launch.run(launch.train_pipeline, 'lesrcnn-train', __doc__, is_train=True, argv=argv)


if __name__ == '__main__':
    sys.exit(main())
