"""The counts of ``complexity`` against a second, independent counter: ``mmengine.analysis``.

``mmengine.analysis`` (what ``get_model_complexity_info`` runs: ``FlopAnalyzer`` and
``parameter_count``) is fvcore's counter: it traces the network with ``torch.jit`` and applies a
handle per traced operator, whereas ``torch.utils.flop_counter`` intercepts the aten operators as they
are dispatched. Where the two conventions meet and where they part:

* **Parameters**: both count every tensor of ``model.parameters()`` once.
* **"flops"**: mmengine's "flops" are multiply-accumulates, i.e. our MACs (not our FLOPs = 2 x MACs).
* **Convolutions, linear layers, matrix products**: both count the multiply-accumulates of the weights
  only: neither adds the bias, and neither counts the pixel shuffle (a reshuffle of memory). mmengine
  counts an ``einsum`` with numpy's ``einsum_path`` cost estimate (halved), which can differ from the
  exact count by a few parts in a hundred thousand.
* **Counted by mmengine only**: normalisation (batch, group, layer, instance norm), nearest and
  bilinear upsampling, adaptive average pooling and grid sampling, at one to a few operations per
  element. ``torch.utils.flop_counter`` has no formula for them.
* **Seen by torch only**: work that a network does on ``tensor.data`` in its forward (re-folding
  re-parameterised kernels at every call, as spandrel's SPAN does) is not recorded by ``torch.jit``
  tracing, so mmengine misses it; that difference does not depend on the input size.

``cross_check`` counts one network both ways and ``CrossCheck`` compares them kind by kind.
"""
from __future__ import annotations

import copy
import dataclasses
import logging

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .complexity import CONVOLUTIONS, InputSize, count_complexity

#: mmengine's operator names, by kind of work. Everything else it counts is elementwise.
MMENGINE_KINDS = {'conv': 'convolutions', 'linear': 'matrix products', 'addmm': 'matrix products',
                  'mm': 'matrix products', 'matmul': 'matrix products', 'bmm': 'matrix products',
                  'einsum': 'matrix products'}

#: mmengine's handles for elementwise work (turned off when one of them fails on a network).
ELEMENTWISE_HANDLES = ('aten::batch_norm', 'aten::group_norm', 'aten::layer_norm', 'aten::instance_norm',
                       'aten::upsample_nearest2d', 'aten::upsample_bilinear2d', 'aten::adaptive_avg_pool2d',
                       'aten::grid_sampler')


@dataclasses.dataclass
class CrossCheck:
    """One network counted by both counters at one input size.

    Attributes:
        size: The input size both counted (small: mmengine runs the network on the CPU).
        params: Ours (``complexity``).
        mmengine_params: ``mmengine.analysis.parameter_count``.
        macs: Ours by kind: ``{'convolutions': ..., 'matrix products': ...}``.
        mmengine_by_operator: ``FlopAnalyzer.by_operator()``: multiply-accumulates by its convention.
        note: Why the comparison is restricted, when it is (mmengine could not run its elementwise handles).
    """
    size: InputSize
    params: int
    mmengine_params: int
    macs: dict[str, int]
    mmengine_by_operator: dict[str, float]
    note: str = ''

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def mmengine_total(self) -> float:
        return sum(self.mmengine_by_operator.values())

    @property
    def mmengine_macs(self) -> dict[str, float]:
        """mmengine's count of the kinds both counters count."""
        by_kind = dict.fromkeys(self.macs, 0.0)
        for name, count in self.mmengine_by_operator.items():
            if name in MMENGINE_KINDS:
                by_kind[MMENGINE_KINDS[name]] = by_kind.get(MMENGINE_KINDS[name], 0.0) + count
        return by_kind

    @property
    def only_mmengine(self) -> dict[str, float]:
        """Elementwise operators mmengine counts and ``torch.utils.flop_counter`` does not."""
        return {name: count for name, count in self.mmengine_by_operator.items()
                if name not in MMENGINE_KINDS and count}

    @property
    def differences(self) -> dict[str, float]:
        """Ours minus mmengine's, per kind both count (zero where they agree)."""
        theirs = self.mmengine_macs
        return {kind: self.macs.get(kind, 0) - theirs.get(kind, 0.0) for kind in {*self.macs, *theirs}
                if self.macs.get(kind, 0) != theirs.get(kind, 0.0)}

    @property
    def agrees(self) -> bool:
        """The same parameters, and the same MACs on every kind of work both count."""
        return self.params == self.mmengine_params and not self.differences


def cross_check(model: nn.Module, size: InputSize) -> CrossCheck:
    """Count ``model`` (calling contract, run at its default scale) with both counters at ``size``.

    mmengine traces a real forward pass, so it runs on the CPU: keep ``size`` small (tens of pixels).
    """
    from mmengine.analysis import parameter_count

    report = count_complexity(model, size)
    runner = copy.deepcopy(model).cpu().eval()
    inputs = (torch.zeros(1, 3, *size.lr),)
    note = ''
    logging.getLogger('mmengine').setLevel(logging.ERROR)  # its per-operator warnings are what this reports
    try:
        by_operator = _mmengine_by_operator(runner, inputs, disabled=())
    except AssertionError as exc:  # a handle rejecting a shape, e.g. layer_norm of a 6-D window tensor
        by_operator = _mmengine_by_operator(runner, inputs, disabled=ELEMENTWISE_HANDLES)
        note = f'mmengine\'s elementwise handles fail on this network ({exc!r}): compared on the shared kinds'
    macs = _macs_by_kind(runner, inputs)
    if sum(macs.values()) != report.total.macs:  # the split must be of the very count the reports print
        raise AssertionError(f'MACs on the CPU {sum(macs.values())} differ from the report\'s {report.total.macs}')
    return CrossCheck(size, report.total.params, parameter_count(runner)[''], macs, by_operator, note)


def _macs_by_kind(model: nn.Module, inputs: tuple) -> dict[str, int]:
    """Our MACs split into convolutions and everything else ``torch.utils.flop_counter`` counts."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    by_operator = counter.get_flop_counts().get('Global', {})
    convolutions = sum(by_operator.get(op, 0) for op in CONVOLUTIONS) // 2
    return {'convolutions': convolutions, 'matrix products': counter.get_total_flops() // 2 - convolutions}


def _mmengine_by_operator(model: nn.Module, inputs: tuple, disabled: tuple[str, ...]) -> dict[str, float]:
    from mmengine.analysis import FlopAnalyzer

    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings('none')
    for handle in disabled:
        # set_op_handle(name, None) leaves the default handle in place (mmengine 0.10): count zero instead.
        analyzer.set_op_handle(handle, _not_counted)
    with torch.no_grad():
        return dict(analyzer.by_operator())


def _not_counted(_inputs, _outputs) -> int:
    return 0


__all__ = ['ELEMENTWISE_HANDLES', 'MMENGINE_KINDS', 'CrossCheck', 'cross_check']
