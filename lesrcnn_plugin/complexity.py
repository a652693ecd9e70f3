"""Parameters, MACs, FLOPs and activations of LESRCNN-family networks, with stated conventions.

Conventions (printed with every report):

* **Parameters**: every tensor of ``model.parameters()``, the frozen mean shifts included (they are
  convolutions in the authors' code and count towards the released 626,328 at x2); *trainable*
  excludes them.
* **MACs**: multiply-accumulates of the convolutions, counted by ``torch.utils.flop_counter``
  (``FlopCounterMode``) over one forward pass of a batch of one. Bias additions, ReLUs, residual
  sums and the pixel shuffle are not counted (the usual convention of SR papers).
* **FLOPs** = 2 x MACs (one multiply and one add per MAC). Tables that print "FLOPs" for MACs
  (fvcore, mmengine, many SR papers) are off by this factor of two.
* **Activations**: as the NTIRE efficient-SR challenge defines them, the number of elements of the
  outputs of every convolutional layer (``nn.Conv2d``) in one forward pass of a batch of one.
* The RB applies **one upsampler twice** (to the deep and to the shallow features): its MACs and
  activations count twice, its parameters once.

The network is run on the ``meta`` device, so counting a 1024x1024 output takes no time and no memory.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .archs import LESRCNNBody
from .errors import ConfigError

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
    'Parameters: all tensors, the frozen mean shifts included; trainable excludes them.',
    'MACs: multiply-accumulates of the convolutions (torch.utils.flop_counter), batch of one; '
    'biases, ReLU, sums and pixel shuffle not counted.',
    'FLOPs = 2 x MACs.',
    'Activations (NTIRE efficient-SR definition): elements of every convolution output, batch of one.',
)


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


@dataclasses.dataclass
class ComplexityReport:
    """Complexity of one network at one input size.

    Attributes:
        network: Registered name of the network.
        arch_kwargs: Arguments it was built with.
        scale: Upscaling factor the forward pass used.
        size: Input and output sizes.
        blocks: One ``BlockCount`` per entry of ``BLOCKS``.
        total: Their sum.
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


def _count_params(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def count_complexity(model: LESRCNNBody, size: InputSize, scale: int | None = None, network: str | None = None,
                     arch_kwargs: Mapping | None = None) -> ComplexityReport:
    """Count parameters, MACs, FLOPs and activations of ``model`` for one LR input size.

    Args:
        model: A LESRCNN-family network (not modified; a copy runs on the meta device).
        size: Input size, from ``input_size`` (its ``lr`` is used).
        scale: Scale to run (multi-scale networks); defaults to the model's own.
        network: Name to print (defaults to the class name).
        arch_kwargs: Arguments to print alongside the name.
    """
    if not isinstance(model, LESRCNNBody):
        raise TypeError(f'expected a LESRCNN-family network, got {type(model).__name__}')
    scale = model.default_scale if scale is None else scale
    if scale not in model.scales:
        raise ConfigError(f'this network has upsamplers for scales {model.scales}, not {scale}')
    blocks = {name: BlockCount(name) for name, _ in BLOCKS}
    for name, attributes in BLOCKS:
        for attribute in attributes:
            total, trainable = _count_params(getattr(model, attribute))
            blocks[name].params += total
            blocks[name].trainable_params += trainable

    runner = copy.deepcopy(model).to('meta').eval()
    owner = {attribute: name for name, attributes in BLOCKS for attribute in attributes}
    hooks = []
    for module_name, module in runner.named_modules():
        if isinstance(module, nn.Conv2d):
            block = blocks[owner[module_name.split('.')[0]]]
            hooks.append(module.register_forward_hook(
                lambda _module, _inputs, output, block=block: _record_activation(block, output)))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            output = runner(torch.zeros(1, 3, *size.lr, device='meta'), scale=scale)
    finally:
        for hook in hooks:
            hook.remove()
    if tuple(output.shape[-2:]) != size.hr:
        raise AssertionError(f'output {tuple(output.shape)} does not match the expected HR size {size.hr}')
    flops_by_module = counter.get_flop_counts()
    for path, name in owner.items():
        key = f'{type(runner).__name__}.{path}'
        flops = sum(flops_by_module.get(key, {}).values())
        if flops % 2:
            raise AssertionError(f'odd FLOP count {flops} for {path}: not 2 x MACs')
        blocks[name].macs += flops // 2

    total = BlockCount('total')
    for block in blocks.values():
        for field in ('params', 'trainable_params', 'macs', 'activations', 'conv_calls'):
            setattr(total, field, getattr(total, field) + getattr(block, field))
    grand_total = counter.get_total_flops()
    if 2 * total.macs != grand_total:
        raise AssertionError(f'blocks sum to {2 * total.macs} FLOPs but the network counts {grand_total}')
    return ComplexityReport(network or type(model).__name__, dict(arch_kwargs or {}), scale, size,
                            list(blocks.values()), total, _notes(model, scale))


def _record_activation(block: BlockCount, output: torch.Tensor) -> None:
    block.activations += output.numel()
    block.conv_calls += 1


def _notes(model: LESRCNNBody, scale: int) -> list[str]:
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


def network_spec(spec: Mapping, source: str) -> tuple[str, dict]:
    """``{'type': NAME, **kwargs}`` (a BasicSR ``network_g`` or an MMagic ``generator``) -> (name, kwargs).

    A registry scope (``mmagic.LESRCNN``) is dropped.
    """
    if not isinstance(spec, Mapping) or 'type' not in spec:
        raise ConfigError(f'{source}: the network section must be a mapping with a "type" key')
    kwargs = {key: (list(value) if isinstance(value, tuple) else value) for key, value in spec.items() if key != 'type'}
    return str(spec['type']).rsplit('.', 1)[-1], kwargs


def network_from_basicsr_options(path: str) -> tuple[str, dict]:
    """Read ``network_g`` from a BasicSR options YAML (plain YAML; BasicSR is not imported)."""
    import yaml
    try:
        with open(path, encoding='utf-8') as handle:
            options = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f'{path}: cannot read ({exc.strerror})') from None
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path}: not valid YAML ({exc})') from None
    if not isinstance(options, Mapping) or 'network_g' not in options:
        raise ConfigError(f'{path}: no network_g section')
    return network_spec(options['network_g'], f'{path}: network_g')


def network_from_mmagic_config(path: str) -> tuple[str, dict]:
    """Read ``model.generator`` from an MMagic config (needs mmengine; MMagic is not imported)."""
    try:
        from mmengine.config import Config
    except ImportError:
        raise ConfigError('reading an MMagic config needs mmengine (pip install mmengine)') from None
    try:
        config = Config.fromfile(path, import_custom_modules=False)
    except Exception as exc:  # mmengine raises many types for a bad file; all are the user's to fix
        raise ConfigError(f'{path}: cannot read the config ({exc})') from None
    generator = config.get('model', {}).get('generator')
    if generator is None:
        raise ConfigError(f'{path}: no model.generator section')
    return network_spec(generator.to_dict() if hasattr(generator, 'to_dict') else generator,
                        f'{path}: model.generator')


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
