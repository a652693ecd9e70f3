"""Parameters, MACs, FLOPs and activations of any super-resolution network, with stated conventions.

Conventions (printed with every report; ``CONVENTIONS``):

* **Parameters**: every tensor of ``model.parameters()`` (the LESRCNN family's frozen mean shifts
  included: they are convolutions in the authors' code and count towards the released 626,328 at x2);
  *trainable* excludes the frozen ones.
* **MACs**: multiply-accumulates counted by ``torch.utils.flop_counter.FlopCounterMode`` over one
  forward pass of a batch of one: convolutions and matrix products (linear layers, attention),
  which is all its registry knows. Bias additions, activations, normalisation, softmax, interpolation,
  pooling, residual sums and the pixel shuffle are not counted (the usual convention of SR papers).
* **FLOPs** = 2 x MACs (one multiply and one add per MAC). Tables that print "FLOPs" for MACs
  (fvcore, ``mmengine.analysis``, the NTIRE ESR script, many SR papers) are off by this factor of two.
* **Activations**: as the NTIRE efficient-SR challenge defines them, the number of elements of the
  outputs of every convolution in one forward pass of a batch of one. Counted per executed
  convolution (``aten.convolution``), which for networks built of ``nn.Conv2d``/``nn.ConvTranspose2d``
  equals the challenge script's module-hook count, and also sees functional convolutions.
* The LESRCNN RB applies **one upsampler twice** (to the deep and to the shallow features): its MACs
  and activations count twice, its parameters once.

Blocks: the LESRCNN family is broken down by ``BLOCKS``; any other network by its top-level children
that hold parameters or do counted work, plus ``(top level)`` for what its own ``forward`` does outside
them. A network whose children share modules gets totals only.

The network runs on the ``meta`` device, so counting a 1024x1024 output takes no time and no memory; a
network that cannot run there is counted on the CPU (the report's notes say so).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .archs import spec_of
from .errors import ConfigError
from .contract import ForeignNetwork

#: The blocks of a LESRCNN-family network, as (report name, attributes of ``LESRCNNBody``).
BLOCKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ('mean shifts', ('subtract_mean', 'add_mean')),
    ('IEEB', ('information_extraction',)),
    ('RB', ('reconstruction',)),
    ('IRB', ('refinement',)),
)

#: Named input sizes: ``(which side the size gives, (height, width))``. ``ntire`` is the NTIRE
#: efficient-SR challenge's 256x256 LR input; ``720p`` a 1280x720 output; 256/512/1024 the square
#: HR outputs of the paper's runtime table.
PRESETS: dict[str, tuple[str, tuple[int, int]]] = {
    'ntire': ('lr', (256, 256)),
    '720p': ('hr', (720, 1280)),
    '256': ('hr', (256, 256)),
    '512': ('hr', (512, 512)),
    '1024': ('hr', (1024, 1024)),
}

CONVENTIONS = (
    'Parameters: all tensors (LESRCNN: the frozen mean shifts included); trainable excludes frozen ones.',
    'MACs: multiply-accumulates of convolutions and matrix products (torch.utils.flop_counter), batch of one; '
    'biases, activations, normalisation, softmax, interpolation, sums and pixel shuffle not counted.',
    'FLOPs = 2 x MACs (fvcore, mmengine.analysis and the NTIRE ESR script print MACs as "FLOPs").',
    'Activations (NTIRE efficient-SR definition): elements of every convolution output, batch of one.',
)

#: Name of the row holding what a foreign network's own ``forward`` does outside its children.
TOP_LEVEL = '(top level)'

_ATEN = torch.ops.aten
#: The operators ``FlopCounterMode`` counts as convolutions (one of them runs per convolution).
CONVOLUTIONS = (_ATEN.convolution, _ATEN._convolution, _ATEN.cudnn_convolution, _ATEN._slow_conv2d_forward,
                _ATEN.convolution_overrideable)


@dataclasses.dataclass(frozen=True)
class InputSize:
    """The LR input and HR output of one count.

    Attributes:
        label: How the size was asked for (a preset name, or ``lr HxW`` / ``hr HxW``).
        lr: LR input (height, width).
        hr: HR output (height, width): ``scale`` times ``lr``.
    """
    label: str
    lr: tuple[int, int]
    hr: tuple[int, int]


def parse_size(text: str) -> tuple[int, int]:
    """``'256x256'`` or ``'720x1280'`` (height x width) -> ``(height, width)``."""
    parts = text.lower().replace('*', 'x').split('x')
    try:
        height, width = (int(part) for part in parts)
    except ValueError:
        raise ConfigError(f'size {text!r} is not HEIGHTxWIDTH, e.g. 256x256') from None
    if height <= 0 or width <= 0:
        raise ConfigError(f'size {text!r} must be positive')
    return height, width


def input_size(scale: int, *, lr: tuple[int, int] | None = None, hr: tuple[int, int] | None = None,
               preset: str | None = None) -> InputSize:
    """Resolve exactly one of an LR size, an HR size or a preset for an upscaling factor.

    An HR size that ``scale`` does not divide is cropped to the nearest multiple (``720p`` at x3 gives a
    1278x720 output from a 426x240 input), as benchmark images are modcropped; the label says so.
    """
    if sum(value is not None for value in (lr, hr, preset)) != 1:
        raise ConfigError('give exactly one of lr, hr, preset')
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f'unknown size preset {preset!r}; choose one of {sorted(PRESETS)}')
        side, size = PRESETS[preset]
        resolved = input_size(scale, **{side: size})
        crop_note = resolved.label.partition(' (')[2]
        return dataclasses.replace(resolved, label=preset + (f' ({crop_note}' if crop_note else ''))
    if lr is not None:
        return InputSize(f'lr {lr[0]}x{lr[1]}', tuple(lr), (lr[0] * scale, lr[1] * scale))
    lr_size = (hr[0] // scale, hr[1] // scale)
    if min(lr_size) == 0:
        raise ConfigError(f'HR size {hr[0]}x{hr[1]} is smaller than the scale {scale}')
    out = (lr_size[0] * scale, lr_size[1] * scale)
    label = f'hr {hr[0]}x{hr[1]}' + ('' if out == tuple(hr) else f' (modcropped to {out[0]}x{out[1]})')
    return InputSize(label, lr_size, out)


@dataclasses.dataclass
class BlockCount:
    """Counts of one block. ``flops`` is derived: 2 x ``macs``."""
    name: str
    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    activations: int = 0
    conv_calls: int = 0

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), 'flops': self.flops}


_FIELDS = ('params', 'trainable_params', 'macs', 'activations', 'conv_calls')


@dataclasses.dataclass
class ComplexityReport:
    """Complexity of one network at one input size.

    Attributes:
        network: Name of the network (``LESRCNN``, ``basicsr:EDSR``, ...).
        arch_kwargs: Arguments it was built with.
        scale: Upscaling factor the forward pass used.
        size: Input and output sizes.
        blocks: One ``BlockCount`` per block (``BLOCKS`` for the family, top-level children otherwise).
        total: The whole network.
        notes: What the reader must know to compare the figures (the RB runs its upsampler twice...).
    """
    network: str
    arch_kwargs: dict
    scale: int
    size: InputSize
    blocks: list[BlockCount]
    total: BlockCount
    notes: list[str]

    def to_dict(self) -> dict:
        return {
            'network': self.network, 'arch_kwargs': self.arch_kwargs, 'scale': self.scale,
            'size': dataclasses.asdict(self.size),
            'blocks': [block.to_dict() for block in self.blocks], 'total': self.total.to_dict(),
            'notes': self.notes, 'conventions': list(CONVENTIONS),
        }


def block_layout(model: nn.Module) -> list[tuple[str, tuple[str, ...]]]:
    """(row name, module paths) of a report: ``BLOCKS`` for the family, else each top-level child."""
    if spec_of(model) is not None:
        return list(BLOCKS)
    network, prefix = (model.network, 'network.') if isinstance(model, ForeignNetwork) else (model, '')
    return [(name, (prefix + name,)) for name, _ in network.named_children()]


def _count_params(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _conv_output_elements(*_args, out_shape, **_kwargs) -> int:
    return math.prod(out_shape)


def _one_call(*_args, out_shape, **_kwargs) -> int:
    return 1


def _forward_counts(model: nn.Module, size: InputSize, scale: int) -> tuple[str, dict[str, BlockCount], tuple]:
    """One counted forward pass: (device, counts by ``FlopCounterMode`` module name, output shape).

    Three ``FlopCounterMode`` instances watch the same pass: the default one for MACs, and two whose
    convolution formula returns the output's element count (activations) and 1 (calls).
    """
    for device in ('meta', 'cpu'):
        runner = copy.deepcopy(model).to(device).eval()
        flop_counter = FlopCounterMode(display=False)
        activation_counter = FlopCounterMode(display=False,
                                             custom_mapping=dict.fromkeys(CONVOLUTIONS, _conv_output_elements))
        call_counter = FlopCounterMode(display=False, custom_mapping=dict.fromkeys(CONVOLUTIONS, _one_call))
        try:
            with torch.no_grad(), flop_counter, activation_counter, call_counter:
                output = runner(torch.zeros(1, 3, *size.lr, device=device), scale=scale)
        except (NotImplementedError, RuntimeError) as exc:
            if device == 'meta':
                continue  # an operator without a meta kernel: count on the CPU instead
            raise ConfigError(f'{type(model).__name__} fails on a {size.lr[0]}x{size.lr[1]} input: {exc}') from None
        counts: dict[str, BlockCount] = {}
        for key, by_op in flop_counter.get_flop_counts().items():
            counts.setdefault(key, BlockCount(key)).macs = sum(by_op.values()) // 2
        for counter, field in ((activation_counter, 'activations'), (call_counter, 'conv_calls')):
            for key, by_op in counter.get_flop_counts().items():
                setattr(counts.setdefault(key, BlockCount(key)), field, sum(by_op.get(op, 0) for op in CONVOLUTIONS))
        if flop_counter.get_total_flops() % 2:
            raise AssertionError(f'odd FLOP count {flop_counter.get_total_flops()}: not 2 x MACs')
        return device, counts, tuple(output.shape)
    raise AssertionError('unreachable: the CPU pass returns or raises')


def count_complexity(model: nn.Module, size: InputSize, scale: int | None = None, network: str | None = None,
                     arch_kwargs: Mapping | None = None) -> ComplexityReport:
    """Count parameters, MACs, FLOPs and activations of ``model`` for one LR input size.

    Args:
        model: A network with the calling contract (``scales``, ``default_scale``, ``model(x, scale=k)``):
            one of the family, or any network through ``networks.resolve_network``. Not modified.
        size: Input size, from ``input_size`` (its ``lr`` is used).
        scale: Scale to run (multi-scale networks); defaults to the model's own.
        network: Name to print (defaults to the class name).
        arch_kwargs: Arguments to print alongside the name.
    """
    scale = model.default_scale if scale is None else scale
    if scale not in model.scales:
        raise ConfigError(f'this network upscales by {model.scales}, not {scale}')
    device, counts, output_shape = _forward_counts(model, size, scale)
    if tuple(output_shape[-2:]) != size.hr:
        raise ConfigError(f'output {output_shape} does not match the expected HR size {size.hr} '
                          f'(LR {size.lr} x{scale})')
    root = type(model).__name__
    executed = counts.get('Global', BlockCount('Global'))  # absent when nothing countable ran
    total = BlockCount('total', *_count_params(model), executed.macs, executed.activations, executed.conv_calls)
    blocks = []
    for name, paths in block_layout(model):
        block = BlockCount(name)
        for path in paths:
            params, trainable = _count_params(model.get_submodule(path))
            executed = counts.get(f'{root}.{path}', BlockCount(path))
            block.params += params
            block.trainable_params += trainable
            block.macs += executed.macs
            block.activations += executed.activations
            block.conv_calls += executed.conv_calls
        blocks.append(block)
    notes = _family_notes(model, scale) if spec_of(model) is not None else []
    blocks = _with_top_level(model, blocks, total, notes)
    if device == 'cpu':
        notes.append('Counted on the CPU: the network does not run on the meta device.')
    return ComplexityReport(network or root, dict(arch_kwargs or {}), scale, size, blocks, total, notes)


def _with_top_level(model: nn.Module, blocks: list[BlockCount], total: BlockCount,
                    notes: list[str]) -> list[BlockCount]:
    """The rows to print: the blocks, and for a foreign network the remainder as ``TOP_LEVEL``.

    The family's blocks cover the whole network (checked). Another network keeps only the children
    that hold parameters or do counted work; when its children overlap (shared modules) it gets no rows.
    """
    remainder = BlockCount(TOP_LEVEL, **{field: getattr(total, field) - sum(getattr(b, field) for b in blocks)
                                         for field in _FIELDS})
    if spec_of(model) is not None:
        if any(getattr(remainder, field) for field in _FIELDS):
            raise AssertionError(f'the blocks do not add up to the network: {remainder}')
        return blocks
    name = type(model.network if isinstance(model, ForeignNetwork) else model).__name__
    if any(getattr(remainder, field) < 0 for field in _FIELDS):
        notes.append(f'{name}: its top-level children share modules, so only totals are given.')
        return []
    rows = [block for block in blocks + [remainder] if any(getattr(block, field) for field in _FIELDS)]
    notes.append(f'Rows: the top-level children of {name} that hold parameters or do counted work; '
                 f'"{TOP_LEVEL}" is what its own forward() does outside them.')
    return rows


def _family_notes(model: nn.Module, scale: int) -> list[str]:
    notes = []
    if model.reconstruction.fuse_shallow:
        notes.append('RB: the same upsampler runs twice (deep and shallow features): its MACs and '
                     'activations are counted twice, its parameters once.')
    else:
        notes.append('RB: this variant upsamples the deep features only (one upsampler pass).')
    if len(model.scales) > 1:
        notes.append(f'RB parameters include the upsamplers of every scale {model.scales}; MACs and '
                     f'activations those of x{scale} only.')
    return notes


def format_markdown(reports: Sequence[ComplexityReport]) -> str:
    """One table per report, then the conventions and notes."""
    lines = []
    for report in reports:
        args = ', '.join(f'{key}={value}' for key, value in report.arch_kwargs.items())
        lines += [f'### {report.network}({args}) x{report.scale}, {report.size.label}: '
                  f'LR {report.size.lr[0]}x{report.size.lr[1]} -> HR {report.size.hr[0]}x{report.size.hr[1]}', '',
                  '| block | params | trainable | MACs | FLOPs (2 x MACs) | activations | conv calls |',
                  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
        for block in [*report.blocks, report.total]:
            name = f'**{block.name}**' if block is report.total else block.name
            lines.append(f'| {name} | {block.params:,} | {block.trainable_params:,} | {_si(block.macs)} | '
                         f'{_si(block.flops)} | {_si(block.activations)} | {block.conv_calls} |')
        lines += [''] + [f'- {note}' for note in report.notes] + ['']
    lines += ['Conventions:', ''] + [f'- {text}' for text in CONVENTIONS]
    return '\n'.join(lines) + '\n'


def csv_rows(reports: Sequence[ComplexityReport]) -> list[dict]:
    """One row per (report, block), exact integers."""
    rows = []
    for report in reports:
        for block in [*report.blocks, report.total]:
            rows.append({
                'network': report.network, 'arch_kwargs': repr(report.arch_kwargs), 'scale': report.scale,
                'size': report.size.label, 'lr_h': report.size.lr[0], 'lr_w': report.size.lr[1],
                'hr_h': report.size.hr[0], 'hr_w': report.size.hr[1], 'block': block.name, 'params': block.params,
                'trainable_params': block.trainable_params, 'macs': block.macs, 'flops': block.flops,
                'activations': block.activations, 'conv_calls': block.conv_calls})
    return rows


def _si(value: int) -> str:
    for unit, factor in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if value >= factor:
            return f'{value / factor:.3f} {unit}'
    return str(value)
