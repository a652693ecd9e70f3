"""Train a LESRCNN-family network with BasicSR: ``python -m lesrcnn_plugin.basicsr.train -opt YAML``
(``lesrcnn-train``), e.g. ``-opt options/train_lesrcnn_x2.yml``.

BasicSR's ``train_pipeline`` with the family registered (``lesrcnn_plugin.basicsr``), writing
``experiments/<name>/`` and ``tb_logger/<name>/`` under the current working directory. BasicSR's
flags pass through: ``--auto_resume``, ``--debug``, ``--launcher pytorch`` (under
``torchrun --nproc_per_node=N -m lesrcnn_plugin.basicsr.train ...``), ``--force_yml key:key=value``.
See docs/basicsr.md.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from . import launch  # importing this package registers the family into BasicSR's registries


def main(argv: Sequence[str] | None = None) -> int:
    """``lesrcnn-train`` (``lesrcnn_plugin.cli.basicsr_commands``); ``argv`` defaults to ``sys.argv[1:]``.
    Returns the exit code."""
    return launch.run(launch.train_pipeline, 'lesrcnn-train', __doc__, is_train=True, argv=argv)


if __name__ == '__main__':
    sys.exit(main())
