"""Runtime measurement of the LESRCNN family: the reference against the fast path, in one run.

* ``timing``: the settings, the interleaved synchronised rounds, the roofline probe, peak memory and
  ``measure_runtime``, which returns one ``Row`` per setting and size (and per roofline probe).
* ``report``: the comparisons drawn from the rows, the environment, and ``RuntimeReport``, which
  renders a run as JSON, CSV and markdown.
* ``plots``: the runtime plot, and the quality plot of a results file (matplotlib imported lazily).

``lesrcnn-measure-runtime`` (``lesrcnn_plugin.cli.measure_runtime``) puts them together.
"""
from .plots import RESULT_COLUMNS, plot_quality, plot_runtime, read_results
from .report import Comparison, RuntimeReport, comparisons, environment, format_markdown, roofline_rate
from .timing import (DTYPES, MEMORY_FORMATS, PATHS, ROOFLINE_MACS, ROOFLINE_SHAPE, Row, Setting, Timing,
                     executed_macs, measure_runtime, settings_grid)

__all__ = ['DTYPES', 'MEMORY_FORMATS', 'PATHS', 'RESULT_COLUMNS', 'ROOFLINE_MACS', 'ROOFLINE_SHAPE', 'Comparison',
           'Row', 'RuntimeReport', 'Setting', 'Timing', 'comparisons', 'environment', 'executed_macs',
           'format_markdown', 'measure_runtime', 'plot_quality', 'plot_runtime', 'read_results', 'roofline_rate',
           'settings_grid']
