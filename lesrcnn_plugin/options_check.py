"""The numeric options of the training recipes, checked against their types and ranges before a run starts.

The frameworks read an option where they use it, so a wrong value fails late or not at all: in BasicSR
``gt_size: -32`` ends training in an OpenCV assertion, ``total_iter: -5`` trains nothing and exits 0,
and ``total_iter: abc`` gives a traceback once ``experiments/<name>/`` exists. ``check_option_values``
checks every option of a table (``BASICSR_OPTIONS`` for BasicSR options files, ``MMAGIC_OPTIONS`` for
MMagic configs) first, and names the first wrong one in one line, e.g.
``opt.yml: train.total_iter must be an integer of at least 1, got -5``.

A table maps an option path to its ``Rule``; ``*`` in a path stands for any run of keys or list
indices (``datasets.*.gt_size``: every dataset's). Only options present are checked: a missing one is
the framework's default (or the framework's own error). A whole number written as a float
(``val_freq: !!float 5e3``, as BasicSR's recipes do) is an integer.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from .errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Rule:
    """What an option may hold: a number (or a list of numbers) within a range, or one of ``also``."""

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low end itself excluded (a learning rate above 0)
    high_open: bool = False
    is_list: bool = False
    also: tuple = ()  # other accepted values, e.g. 'auto' GPUs

    def accepts_number(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.integer and not float(value).is_integer():
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def accepts(self, value: object) -> bool:
        if value in self.also and not isinstance(value, bool):
            return True
        if self.is_list:
            return isinstance(value, (list, tuple)) and bool(value) and all(self.accepts_number(v) for v in value)
        return self.accepts_number(value)

    def describe(self) -> str:
        """The rule in words: ``an integer of at least 1``, ``a number above 0``."""
        noun = 'integer' if self.integer else 'number'
        if self.low is not None and self.high is not None and not (self.low_open or self.high_open):
            bounds = f'from {self.low:g} to {self.high:g}'
        elif self.low is not None and self.high is not None:
            bounds = (f'{"above" if self.low_open else "of at least"} {self.low:g} and '
                      f'{"below" if self.high_open else "at most"} {self.high:g}')
        elif self.low is not None:
            bounds = f'above {self.low:g}' if self.low_open else f'of at least {self.low:g}'
        else:
            bounds = ''
        text = f'a non-empty list of {noun}s' if self.is_list else ('an ' if self.integer else 'a ') + noun
        return f'{text} {bounds}'.rstrip() + ''.join(f' or {value!r}' for value in self.also)


def integer(low: float | None = None, high: float | None = None, also: tuple = ()) -> Rule:
    return Rule(True, low, high, also=also)


def number(low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Rule:
    return Rule(False, low, high, low_open, high_open)


def integers(low: float) -> Rule:
    return Rule(True, low, is_list=True)


def numbers(low: float, high: float | None = None, high_open: bool = False) -> Rule:
    return Rule(False, low, high, high_open=high_open, is_list=True)


#: BasicSR options files (``options/*.yml``): option path -> rule.
BASICSR_OPTIONS: dict[str, Rule] = {
    'scale': integer(1),
    'num_gpu': integer(0, also=('auto',)),
    'manual_seed': integer(0),
    'datasets.*.scale': integer(1),
    'datasets.*.scales': integers(1),
    'datasets.*.gt_size': integer(1),
    'datasets.*.lq_size': integer(1),
    'datasets.*.batch_size_per_gpu': integer(1),
    'datasets.*.num_worker_per_gpu': integer(0),
    'datasets.*.dataset_enlarge_ratio': integer(1),
    'train.total_iter': integer(1),
    'train.warmup_iter': integer(-1),
    'train.grad_clip_norm': number(0),
    'train.ema_decay': number(0, 1, high_open=True),
    'train.optim_*.lr': number(0),  # 0 freezes the weights: a run that only evaluates a loaded network
    'train.optim_*.weight_decay': number(0),
    'train.optim_*.betas': numbers(0, 1, high_open=True),
    'train.optim_*.eps': number(0, low_open=True),
    'train.scheduler.milestones': integers(1),
    'train.scheduler.periods': integers(1),
    'train.scheduler.restart_weights': numbers(0),
    'train.scheduler.gamma': number(0, low_open=True),
    'train.scheduler.eta_min': number(0),
    'train.*_opt.loss_weight': number(0),
    'val.val_freq': integer(1),
    'val.metrics.*.crop_border': integer(0, also=('scale',)),
    'logger.print_freq': integer(1),
    'logger.save_checkpoint_freq': integer(1),
    'dist_params.port': integer(1, 65535),
}

#: MMagic configs (``configs/lesrcnn/*.py``, with their ``--cfg-options``): option path -> rule.
MMAGIC_OPTIONS: dict[str, Rule] = {
    'scale': integer(1),
    'train_cfg.max_iters': integer(1),
    'train_cfg.max_epochs': integer(1),
    'train_cfg.val_interval': integer(1),
    '*_dataloader*.batch_size': integer(1),
    '*_dataloader*.num_workers': integer(0),
    'train_dataloader.dataset*.gt_patch_size': integer(1),
    'optim_wrapper.optimizer.lr': number(0),
    'optim_wrapper.optimizer.weight_decay': number(0),
    'optim_wrapper.optimizer.betas': numbers(0, 1, high_open=True),
    'optim_wrapper.optimizer.eps': number(0, low_open=True),
    'optim_wrapper.clip_grad.max_norm': number(0, low_open=True),
    'param_scheduler*.milestones': integers(1),
    'param_scheduler*.gamma': number(0, low_open=True),
    'default_hooks.checkpoint.interval': integer(1, also=(-1,)),  # -1: never (mmengine's default)
    'default_hooks.checkpoint.max_keep_ckpts': integer(1, also=(-1,)),
    'default_hooks.logger.interval': integer(1),
    'randomness.seed': integer(0),
}


def yaml_problem(error: Exception) -> str:
    """A YAML parse error in one line: what is wrong and where (PyYAML's own message spans four)."""
    problem = getattr(error, 'problem', None) or str(error).splitlines()[0]
    mark = getattr(error, 'problem_mark', None)
    return f'{problem} at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else problem


def _entries(node: object, path: str, patterns: Sequence[str]) -> Iterator[tuple[str, object, str]]:
    """``(path, value, pattern)`` of every entry under ``node`` whose path matches a pattern."""
    for pattern in patterns:
        if path and fnmatch.fnmatchcase(path, pattern):
            yield path, node, pattern
            return
    if isinstance(node, Mapping):
        children = ((str(key), value) for key, value in node.items())
    elif isinstance(node, (list, tuple)) and path:
        children = ((str(index), value) for index, value in enumerate(node))
    else:
        return
    for key, value in children:
        yield from _entries(value, f'{path}.{key}' if path else key, patterns)


def check_option_values(options: Mapping, table: Mapping[str, Rule], source: str) -> None:
    """Check every option of ``options`` that ``table`` lists against its rule.

    Also checks that a training patch (``datasets.*.gt_size``) is a whole multiple of its scale, as the
    HR and LR patches must be cut at the same place.

    Raises:
        ConfigError: ``<source>: <option> must be <rule>, got <value>`` for the first wrong option.
    """
    for path, value, pattern in _entries(options, '', list(table)):
        rule = table[pattern]
        if not rule.accepts(value):
            raise ConfigError(f'{source}: {path} must be {rule.describe()}, got {value!r}')
    datasets = options.get('datasets')
    for phase, dataset in datasets.items() if isinstance(datasets, Mapping) else ():
        if not isinstance(dataset, Mapping) or 'gt_size' not in dataset:
            continue
        scale = dataset.get('scale', options.get('scale'))
        if integer(1).accepts(scale) and int(dataset['gt_size']) % int(scale):
            raise ConfigError(f'{source}: datasets.{phase}.gt_size must be a multiple of the scale {scale}, got '
                              f'{dataset["gt_size"]!r}')


def valid_names(word: str, names: Iterable[str], limit: int = 20) -> str:
    """``names`` for a message: those close to ``word`` first (``difflib``, best first), then the rest
    sorted, at most ``limit`` of them (MMagic registers hundreds) and how many more there are."""
    names = sorted(set(names))
    close = difflib.get_close_matches(word, names, n=len(names), cutoff=0.6)
    ordered = close + [name for name in names if name not in close]
    more = f' and {len(ordered) - limit} more' if len(ordered) > limit else ''
    return ', '.join(ordered[:limit]) + more


def check_constructor_options(options: object, key: str, source: str | os.PathLike,
                              lookup: Callable[[str], Callable | None], names: Iterable[str],
                              kind: str = 'network') -> None:
    """Check a ``dict(type=NAME, **arguments)`` entry of an options file or config before anything is built.

    ``NAME`` must be registered and every argument a parameter of its constructor (unless it takes
    ``**kwargs``); parameters without a default must be given. Entries starting with ``_`` (mmengine's
    ``_scope_``) are the framework's, not the constructor's.

    Args:
        options: the entry, e.g. ``opt['network_g']``.
        key: where it sits in the file, for the message (``network_g``, ``model.generator``).
        source: the file.
        lookup: the registered class of a name, or ``None``.
        names: every registered name, listed (closest first) when ``NAME`` is not one of them.
        kind: what the registry holds, for the message.

    Raises:
        ConfigError: one line naming the file, the key and the valid names.
    """
    if not isinstance(options, Mapping) or not isinstance(options.get('type'), str):
        raise ConfigError(f'{source}: {key} must be a mapping with a "type" naming the {kind}')
    name = options['type']
    target = lookup(name)
    if target is None:
        raise ConfigError(f'{source}: {key}.type {name!r} is not a registered {kind}; valid names: '
                          + valid_names(name, names))
    parameters = inspect.signature(target).parameters
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()):
        return
    accepted = [parameter_name for parameter_name, parameter in parameters.items()
                if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    for argument in options:
        if argument != 'type' and not argument.startswith('_') and argument not in accepted:
            raise ConfigError(f'{source}: {key}.{argument} is not an argument of {name}; valid names: '
                              + valid_names(argument, accepted))
    missing = [parameter_name for parameter_name in accepted if parameter_name not in options
               and parameters[parameter_name].default is inspect.Parameter.empty]
    if missing:
        raise ConfigError(f'{source}: {key} lacks {", ".join(missing)}, which {name} needs')


__all__ = ['BASICSR_OPTIONS', 'MMAGIC_OPTIONS', 'Rule', 'check_constructor_options', 'check_option_values', 'valid_names',
           'yaml_problem']
