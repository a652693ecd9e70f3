"""Training throughput: where a training iteration's time goes, the engine of ``lesrcnn-measure-training``.

* ``measure``: the recipe, the data pipeline alone (``measure_loader``), the step alone
  (``measure_steps``) and the projection of the whole run (``project``).
* ``sources``: what the frameworks' sides share; each framework reads its own file in its
  integration: ``lesrcnn_plugin.basicsr.throughput`` (options files) and
  ``lesrcnn_plugin.mmagic.throughput`` (configs), which also run the framework's real loop.
* ``report``: one run's measurements as JSON and markdown (``TrainingReport``).

Inference timing is ``lesrcnn_plugin.benchmark``; the command (``lesrcnn_plugin.cli.measure_training``)
puts them together.
"""
