"""Run BasicSR's own train/test pipelines with the LESRCNN family registered.

``lesrcnn-train`` and ``lesrcnn-test`` (``lesrcnn_plugin.train`` / ``lesrcnn_plugin.test``) are
BasicSR's ``train_pipeline`` / ``test_pipeline`` with two differences:

* the root of ``experiments/``, ``results/`` and ``tb_logger/`` is the current working directory
  (BasicSR's own scripts use the directory above the installed package, i.e. site-packages);
* resuming loads the training state onto the device the options ask for: BasicSR 1.4.2 maps it to
  ``torch.cuda.current_device()`` unconditionally, so ``--auto_resume`` fails without a GPU;
* ``--launcher pytorch`` on a machine without CUDA uses gloo (``init_dist``): BasicSR's assumes NCCL.

The command line is BasicSR's (``-opt``, ``--launcher``, ``--auto_resume``, ``--debug``,
``--local_rank``, ``--force_yml``); it is checked here first so that a missing option file or a
``--force_yml`` entry that names no existing option is reported in one line, not a traceback. So are
the options themselves (``check_options``), before BasicSR creates ``experiments/<name>/``: the
networks, the model and the datasets against BasicSR's registries (with the closest valid names),
and every LMDB a dataset reads against the keys its ``meta_info.txt`` lists.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from os import path as osp

import lmdb
import torch
import yaml

from basicsr import test as basicsr_test
from basicsr import train as basicsr_train
from basicsr.utils import check_resume, scandir
from basicsr.utils import dist_util as basicsr_dist_util
from basicsr.utils import options as basicsr_options
from basicsr.utils.options import _postprocess_yml_value
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY

from ..commands import run as run_command
from ..data.lmdb_io import check_lmdb_keys, read_meta_info
from ..data.raw_store import MAGIC as RAW_MAGIC
from ..data.raw_store import decode_raw
from ..errors import ConfigError, DataError, ImageError, LESRCNNError
from ..image_io import decode_image
from ..options_check import (BASICSR_OPTIONS, check_constructor_options, check_option_values, valid_names,
                             yaml_problem)
from ..recipes import resolve_recipe

EPILOG = """\
--force_yml overrides options of the YAML file, keys separated by ':', e.g.
  --force_yml datasets:train:dataroot_gt=/data/DIV2K_train_HR_sub.lmdb train:total_iter=1000
Values are parsed by BasicSR: numbers, true/false, ~ (None), [lists]; anything else is a string.
Only options present in the file (or new keys in an existing section) can be set.
"""


def build_parser(prog: str, description: str, is_train: bool) -> argparse.ArgumentParser:
    """BasicSR's command line (``basicsr.utils.options.parse_options``), with help."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, metavar='YAML',
                        help='option file, e.g. options/train_lesrcnn_x2.yml, or a recipe: lesrcnn:train_lesrcnn_x2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='distributed launcher: "pytorch" under torchrun, "slurm" under srun (default: none)')
    if is_train:
        parser.add_argument('--auto_resume', action='store_true',
                            help='resume from the latest state in experiments/<name>/training_states, if any')
    else:  # accepted (BasicSR parses it for both pipelines) but meaningless for testing
        parser.add_argument('--auto_resume', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--debug', action='store_true',
                        help='prefix the experiment name with debug_: print every iteration, validate and save '
                             'every 8, no tensorboard')
    parser.add_argument('--local_rank', type=int, default=0, help='set by old distributed launchers; unused by torchrun')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY:KEY=VALUE',
                        help='override options of the YAML file (see below)')
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Raise ``ConfigError`` if the option file cannot be read or a --force_yml entry cannot apply."""
    if not osp.isfile(args.opt):
        raise ConfigError(f'option file {args.opt} not found')
    try:
        with open(args.opt, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ConfigError(f'{args.opt}: not valid YAML ({yaml_problem(exc)})') from None
    if not isinstance(opt, dict):
        raise ConfigError(f'{args.opt} must hold a mapping of options')
    for entry in args.force_yml or ():
        if entry.count('=') != 1:
            raise ConfigError(f'--force_yml {entry!r}: expected KEY:KEY=VALUE with exactly one "="')
        keys = entry.split('=')[0].strip().split(':')
        section = opt
        for depth, key in enumerate(keys[:-1]):
            section = section.get(key) if isinstance(section, dict) else None
            if not isinstance(section, dict):
                raise ConfigError(f'--force_yml {entry!r}: {args.opt} has no section {":".join(keys[:depth + 1])}')


def options_with_overrides(args: argparse.Namespace) -> dict:
    """The options file as BasicSR will read it: the YAML with the ``--force_yml`` entries applied.

    BasicSR parses each value with its own ``_postprocess_yml_value`` (numbers, booleans, ``~``, lists).
    """
    with open(args.opt, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    for entry in args.force_yml or ():
        keys, value = entry.split('=')
        *sections, last = keys.strip().split(':')
        section = opt
        for key in sections:
            section = section[key]
        section[last] = _postprocess_yml_value(value.strip())
    return opt


def _check_registered(name: object, key: str, registry, kind: str, source: str) -> None:
    """Raise ``ConfigError`` unless ``name`` is registered in a BasicSR ``registry``."""
    names = [registered for registered, _ in registry]
    if name not in names:
        raise ConfigError(f'{source}: {key} {name!r} is not a registered {kind}; valid names: '
                          + valid_names(str(name), names))


def _dataset_roots(dataset: dict) -> dict[str, list[str]]:
    """``{option: [paths]}`` of a dataset's ``dataroot_*``; a ``{scale}`` template gives one per scale."""
    roots = {}
    for option in ('dataroot_gt', 'dataroot_lq'):
        root = dataset.get(option)
        if root is not None:
            root = osp.expanduser(str(root))
            templated = '{scale}' in root
            roots[option] = [root.format(scale=k) for k in dataset.get('scales', ())] if templated else [root]
    return roots


def _check_dataset_files(dataset: dict, key: str, source: str) -> None:
    """The files a dataset reads exist; an LMDB holds every key it lists, the same keys as its pair."""
    roots = _dataset_roots(dataset)
    if (dataset.get('io_backend') or {}).get('type') != 'lmdb':
        for option, paths in roots.items():
            for path in paths:
                if not osp.isdir(path):
                    raise DataError(f'{path}: no such folder ({key}.{option} in {source})')
        return
    for option, paths in roots.items():
        for path in paths:
            try:
                check_lmdb_keys(path)
            except DataError as exc:
                raise DataError(f'{exc} ({key}.{option} in {source})') from None
    # Paired datasets look every key up in both databases (BasicSR's paired_paths_from_lmdb).
    for gt in roots.get('dataroot_gt', []):
        gt_keys = {name for name, _shape in read_meta_info(gt)}
        for lq in roots.get('dataroot_lq', []):
            lq_keys = {name for name, _shape in read_meta_info(lq)}
            if lq_keys != gt_keys:
                example = sorted(lq_keys ^ gt_keys)[0]
                raise DataError(f'{lq} and {gt} list different keys (e.g. {example!r}) ({key} in {source}); '
                                'build both in one lesrcnn-prepare-div2k run')


def check_options(args: argparse.Namespace) -> None:
    """Check what BasicSR would otherwise find only after creating ``experiments/<name>/`` (or mid-run).

    * the numbers (``gt_size``, ``total_iter``, ``lr``, ...) against their types and ranges
      (``options_check.BASICSR_OPTIONS``);
    * every ``network_*``: its ``type`` is in ``ARCH_REGISTRY`` and every other entry is an argument
      of that class (``network_g.upscal`` is named, with the valid names, closest first);
    * ``model_type`` and each dataset's ``type`` are registered;
    * each dataset's folders exist, and each LMDB holds every key its ``meta_info.txt`` lists (a
      missing one would end training with a ``TypeError`` in a dataloader worker), the same keys as
      the database it is paired with.

    Raises:
        ConfigError, DataError: one line naming the options file and the key or database.
    """
    opt = options_with_overrides(args)
    source = args.opt
    check_option_values(opt, BASICSR_OPTIONS, source)
    architectures = dict(iter(ARCH_REGISTRY))
    for key, value in opt.items():
        if key.startswith('network_'):
            check_constructor_options(value, key, source, architectures.get, architectures)
    _check_registered(opt.get('model_type'), 'model_type', MODEL_REGISTRY, 'model', source)
    for phase, dataset in (opt.get('datasets') or {}).items():
        if not isinstance(dataset, dict):
            raise ConfigError(f'{source}: datasets.{phase} must be a mapping of dataset options')
        _check_registered(dataset.get('type'), f'datasets.{phase}.type', DATASET_REGISTRY, 'dataset', source)
        _check_dataset_files(dataset, f'datasets.{phase}', source)


def _check_training_state(state: object, path: str) -> None:
    """Raise ``ConfigError`` unless ``state`` is a BasicSR training state (``<iter>.state``); say what it is instead."""
    if isinstance(state, dict) and {'iter', 'epoch', 'optimizers', 'schedulers'} <= set(state):
        return
    weights = isinstance(state, dict) and (
        {'params', 'params_ema', 'state_dict'} & set(state) or state and all(
            isinstance(value, torch.Tensor) for value in state.values()))
    what = 'network weights' if weights else f'a {type(state).__name__} without "iter"'
    raise ConfigError(f'{path} is {what}, not a BasicSR training state (experiments/<name>/training_states/'
                      '<iter>.state); to start from weights, give them as path.pretrain_network_g')


def load_resume_state(opt: dict) -> dict | None:
    """``basicsr.train.load_resume_state``, loading the state onto the device the options ask for.

    Like BasicSR: with ``auto_resume`` the latest ``<iter>.state`` of the experiment, else
    ``path: resume_state``; ``None`` when there is nothing to resume. Sets the network paths to the
    checkpoint of the resumed iteration (``check_resume``).
    """
    if opt['auto_resume']:
        state_dir = opt['path']['training_states']
        states = list(scandir(state_dir, suffix='.state', recursive=False)) if osp.isdir(state_dir) else []
        if not states:
            return None
        latest = max(int(osp.splitext(name)[0]) for name in states)
        opt['path']['resume_state'] = osp.join(state_dir, f'{latest}.state')
    resume_path = opt['path'].get('resume_state')
    if not resume_path:
        return None
    from ..safe_load import load_untrusted

    device = torch.device('cuda', torch.cuda.current_device()) if opt['num_gpu'] != 0 else torch.device('cpu')
    resume_state = load_untrusted(resume_path, map_location=device)
    _check_training_state(resume_state, resume_path)
    check_resume(opt, resume_state['iter'])
    return resume_state


def init_dist(launcher: str, backend: str = 'nccl', **kwargs) -> None:
    """``basicsr.utils.dist_util.init_dist``, with gloo for ``--launcher pytorch`` where there is no GPU.

    BasicSR pins each process to a GPU (``rank % device_count()``) and uses NCCL, which needs one.
    Without CUDA, torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) starts a gloo
    group instead. Slurm runs place one process per GPU, so ``--launcher slurm`` still needs GPUs.
    """
    if torch.cuda.is_available():
        basicsr_dist_util.init_dist(launcher, backend, **kwargs)
    elif launcher == 'pytorch':
        torch.distributed.init_process_group(backend='gloo')
    else:
        raise ConfigError(f'--launcher {launcher} needs GPUs (one process per GPU, NCCL); on a machine without '
                          'them run several processes with torchrun ... --launcher pytorch (gloo)')


@contextlib.contextmanager
def _basicsr_command_line(prog: str, argv: Sequence[str]) -> Iterator[None]:
    """BasicSR parses ``sys.argv`` itself: hand it ours, and put the original back afterwards."""
    saved_argv, saved_loader, saved_init = sys.argv, basicsr_train.load_resume_state, basicsr_options.init_dist
    sys.argv = [prog, *argv]
    basicsr_train.load_resume_state = load_resume_state
    basicsr_options.init_dist = init_dist
    try:
        yield
    finally:
        sys.argv, basicsr_train.load_resume_state, basicsr_options.init_dist = saved_argv, saved_loader, saved_init


class SamplesNamed(torch.utils.data.Dataset):
    """A BasicSR dataset whose unreadable sample stops the run naming the database (or file) and the key.

    BasicSR's datasets decode a damaged PNG to ``None`` and fail on it with an ``AttributeError``
    naming neither. When a sample fails, each record it reads is read again through the dataset's
    own file client and decoded (``_unreadable_record``); the first that does not decode is
    reported. A failure of another kind is left as it is. The run stops: a damaged database is
    rebuilt, not trained around. Everything else (``opt``, ``len``) is the wrapped dataset's.
    """

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name == 'dataset':  # not set yet (while unpickling in a spawned worker)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> dict:
        try:
            return self.dataset[index]
        except LESRCNNError:
            raise
        except Exception:
            error = _unreadable_record(self.dataset, index)
            if error is None:
                raise
            raise error from None


def _unreadable_record(dataset, index: int) -> DataError | None:
    """The error of the first record of sample ``index`` that cannot be read or decoded, if any."""
    client, paths, opt = (getattr(dataset, name, None) for name in ('file_client', 'paths', 'opt'))
    if client is None or not isinstance(paths, list) or not isinstance(paths[index], dict):
        return None
    lmdb_backend = client.backend == 'lmdb'
    for name, path in paths[index].items():  # gt_path, lq_path, lq_x{k}_path
        client_key = name.removesuffix('_path')
        root = opt.get(f'dataroot_{client_key[:2]}', '')
        source = f'{str(root).format(scale=client_key[4:])}[{path}]' if lmdb_backend else path
        try:
            value = bytes(client.get(path, client_key))
            decode_raw(value, source) if value[:len(RAW_MAGIC)] == RAW_MAGIC else decode_image(value, source)
        except (lmdb.Error, OSError) as exc:
            return DataError(f'{source}: cannot be read ({exc}); rebuild the database')
        except (DataError, ImageError) as exc:
            return DataError(f'{exc}; rebuild the database' if lmdb_backend else str(exc))
    return None


def _one_line(error: LESRCNNError) -> LESRCNNError:
    """A user error raised in a dataloader worker, as one line: torch re-raises it with the worker's
    traceback as its message, whose last line is ``<module>.<class>: <message>``."""
    text = str(error).rstrip()
    if '\nOriginal Traceback' not in text:
        return error
    return type(error)(text.splitlines()[-1].split(': ', 1)[-1])


@contextlib.contextmanager
def _samples_named() -> Iterator[None]:
    """BasicSR's pipelines build their datasets wrapped in ``SamplesNamed``, and report a worker's user
    error in one line."""
    saved = basicsr_train.build_dataset, basicsr_test.build_dataset

    def build_dataset(dataset_opt: dict):
        return SamplesNamed(saved[0](dataset_opt))

    basicsr_train.build_dataset = basicsr_test.build_dataset = build_dataset
    try:
        yield
    except LESRCNNError as exc:
        raise _one_line(exc) from None
    finally:
        basicsr_train.build_dataset, basicsr_test.build_dataset = saved


def run(pipeline: Callable[[str], None], prog: str, description: str, is_train: bool,
        argv: Sequence[str] | None = None) -> int:
    """Check the command line, then run ``pipeline(root_path=cwd)`` on it; returns an exit code.

    Errors are reported as every ``lesrcnn-*`` command reports them (``commands.run``), prefixed
    with the program's name, since BasicSR's own log lines surround them.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog, description, is_train).parse_args(argv)

    def body() -> None:
        args.opt = resolve_recipe(args.opt, kind='options')  # a file, or a name: lesrcnn:train_lesrcnn_x2
        check_args(args)
        check_options(args)
        # BasicSR parses the command line itself, and its last -opt wins: it reads the resolved file.
        with _basicsr_command_line(prog, [*argv, '-opt', args.opt]), _samples_named():
            try:
                pipeline(os.getcwd())
            except lmdb.Error as exc:  # LMDB names the database in its message
                raise DataError(str(exc)) from None

    return run_command(body, prog)


def train_pipeline(root_path: str) -> None:
    """``basicsr.train.train_pipeline`` (looked up at call time, so that the resume loader above applies)."""
    basicsr_train.train_pipeline(root_path)


def test_pipeline(root_path: str) -> None:
    """``basicsr.test.test_pipeline``."""
    basicsr_test.test_pipeline(root_path)
