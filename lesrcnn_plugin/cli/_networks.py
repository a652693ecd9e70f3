"""The network flags of ``lesrcnn-count-flops`` and ``lesrcnn-measure-runtime``: any SR network.

``add_network_arguments(parser)`` adds ``--arch SPEC | -opt YAML | --config PY | --weights FILE``,
``--arch-args JSON``, ``--scale`` and the family's ``--scales/--variant/--num-feat``;
``network_from_arguments(args)`` turns them into a ``networks.ResolvedNetwork`` (see
``lesrcnn_plugin.networks`` for what each spec means). The integrations that give BasicSR's and MMagic's
registries and spandrel's reader are imported here, above them, and only when a name or weights outside
the family need one (``networks.INTEGRATIONS``).
"""
from __future__ import annotations

import argparse
import functools
import importlib
import json

from ..archs import ARCHS, SUPPORTED_SCALES, VARIANTS
from ..errors import ConfigError
from ..networks import FRAMEWORKS, ResolvedNetwork, network_from_basicsr_options, network_from_mmagic_config, \
    network_from_weights, register_integration, resolve_network
from ..recipes import resolve_recipe
from ._common import positive_int, require


# Imported on first use (an integration imports its framework, which takes seconds); one already imported
# has registered itself and stays.
for _name in ('basicsr', 'mmagic', 'spandrel'):
    register_integration(_name, functools.partial(importlib.import_module, f'lesrcnn_plugin.{_name}'), replace=False)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """The network flags shared by ``lesrcnn-count-flops`` and ``lesrcnn-measure-runtime``."""
    group = parser.add_argument_group('network (one of --arch, -opt, --config, --weights; default LESRCNN)')
    source = group.add_mutually_exclusive_group()
    source.add_argument('--arch', metavar='SPEC',
                        help='LESRCNN, MultiScaleLESRCNN or DualKernelLESRCNN; basicsr:NAME; mmagic:NAME; '
                             'package.module:callable or file.py:callable; a bare BasicSR or MMagic name')
    source.add_argument('-opt', '--opt', metavar='YAML',
                        help='BasicSR options file (or recipe name, lesrcnn:train_lesrcnn_x2): its network_g')
    source.add_argument('--config', metavar='PY', help='MMagic config (or recipe name, lesrcnn:lesrcnn_x2_div2k): '
                                                       'its model.generator (needs the "mmagic" extra)')
    source.add_argument('--weights', metavar='FILE',
                        help='weights: LESRCNN checkpoints in any format or a weights name such as '
                             'lesrcnn_x2; any architecture spandrel detects (spandrel extra)')
    group.add_argument('--arch-args', metavar='JSON',
                       help='constructor arguments as a JSON object, e.g. \'{"num_block": 16, "upscale": 4}\'; '
                            'they override the file\'s')
    group.add_argument('--scale', type=positive_int,
                       help='LESRCNN family: the scale to build (or to run, MultiScaleLESRCNN); other networks: '
                            'read from the network when omitted, checked against it when given')
    group.add_argument('--scales', type=int, nargs='+', choices=SUPPORTED_SCALES,
                       help='MultiScaleLESRCNN: scales to build (default 2 3 4)')
    group.add_argument('--variant', choices=sorted(VARIANTS), help='LESRCNN ablation variant (default full)')
    group.add_argument('--num-feat', type=positive_int, help='LESRCNN family: feature channels (default 64)')


def network_from_arguments(args: argparse.Namespace) -> ResolvedNetwork:
    """The network the flags of ``add_network_arguments`` name."""
    family_options = {key: value for key, value in (('scales', args.scales), ('variant', args.variant),
                                                     ('num_feat', args.num_feat)) if value is not None}
    if args.weights is not None:  # '' too: an empty name is an error, not the default network
        if args.arch_args or family_options:
            raise ConfigError('--weights fixes the network: --arch-args, --scales, --variant and --num-feat do '
                              'not apply')
        return network_from_weights(args.weights, scale=args.scale)
    for flag, value in (('-opt', args.opt), ('--config', args.config)):
        if value == '':
            raise ConfigError(f"{flag} '': an empty name is not a file")
    frameworks = FRAMEWORKS
    if args.opt is not None:
        spec, kwargs = network_from_basicsr_options(resolve_recipe(args.opt, kind='options'))
        frameworks = ('basicsr',)
    elif args.config is not None:
        require('mmagic', 'mmengine', needed_by='--config')
        spec, kwargs = network_from_mmagic_config(resolve_recipe(args.config, kind='configs'))
        frameworks = ('mmagic',)
    else:
        spec, kwargs = args.arch or 'LESRCNN', {}
    kwargs.update(parse_arch_args(args.arch_args))
    if family_options:
        if spec not in ARCHS:
            raise ConfigError(f'--{"/--".join(key.replace("_", "-") for key in family_options)} apply to the '
                              f'LESRCNN family only, not {spec}; pass other networks\' arguments with --arch-args')
        kwargs.update(family_options)
    return resolve_network(spec, kwargs, scale=args.scale, frameworks=frameworks)


def parse_arch_args(text: str | None) -> dict:
    """``--arch-args``: a JSON object of constructor arguments."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f'--arch-args is not valid JSON ({exc})') from None
    if not isinstance(value, dict):
        raise ConfigError(f'--arch-args must be a JSON object, got {type(value).__name__}')
    return value


__all__ = ['add_network_arguments', 'network_from_arguments', 'parse_arch_args']
