"""Runtime measurement of SR networks: the LESRCNN reference against its fast path, any network against
others, and the NTIRE efficient-SR convention.

* ``timing``: the settings, the interleaved synchronised rounds, the roofline probe, peak memory and
  ``measure_runtime``, which returns one ``Row`` per setting and size (and per roofline probe).
* ``report``: the comparisons drawn from the rows, the environment, and ``RuntimeReport``, which
  renders a run as JSON, CSV and markdown.
* ``plots``: the runtime plot, and the quality plot of a results file (matplotlib imported lazily).
* ``interleaved``: ``time_networks``, several networks in one interleaved run (the comparison table).
* ``ntire``: ``ntire_runtime``, per-image CUDA events and the mean, as the NTIRE ESR test script times.
* ``load``: the load average before and after, ``wait_until_idle`` (``--require-idle``) and the spread
  flag of a timing.
* ``paper``: the LESRCNN paper's Table 8 and the family timed at its sizes (``--preset paper-table8``).

``lesrcnn-measure-runtime`` (``lesrcnn_plugin.cli.measure_runtime``) puts them together.
"""
from .interleaved import time_networks
from .ntire import CPU_CLOCK, CUDA_CLOCK, NtireTiming, format_ntire_markdown, ntire_runtime
from .plots import RESULT_COLUMNS, plot_quality, plot_runtime, read_results
from .report import Comparison, RuntimeReport, comparisons, environment, format_markdown, roofline_rate
from .timing import (DTYPES, MEMORY_FORMATS, PATHS, ROOFLINE_MACS, ROOFLINE_SHAPE, Row, Setting, Timing,
                     executed_macs, measure_runtime, resolve_device, settings_grid)

__all__ = ['CPU_CLOCK', 'CUDA_CLOCK', 'DTYPES', 'MEMORY_FORMATS', 'PATHS', 'RESULT_COLUMNS', 'ROOFLINE_MACS',
           'ROOFLINE_SHAPE', 'Comparison', 'NtireTiming', 'Row', 'RuntimeReport', 'Setting', 'Timing', 'comparisons',
           'environment', 'executed_macs', 'format_markdown', 'format_ntire_markdown', 'measure_runtime',
           'ntire_runtime', 'plot_quality', 'plot_runtime', 'read_results', 'resolve_device', 'roofline_rate',
           'settings_grid', 'time_networks']
