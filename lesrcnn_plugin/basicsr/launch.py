"""Run BasicSR's own train/test pipelines with the LESRCNN family registered.

``lesrcnn-train`` and ``lesrcnn-test`` (``lesrcnn_plugin.train`` / ``lesrcnn_plugin.test``) are
BasicSR's ``train_pipeline`` / ``test_pipeline`` with two differences:

* the root of ``experiments/``, ``results/`` and ``tb_logger/`` is the current working directory
  (BasicSR's own scripts use the directory above the installed package, i.e. site-packages);
* resuming loads the training state onto the device the options ask for: BasicSR 1.4.2 maps it to
  ``torch.cuda.current_device()`` unconditionally, so ``--auto_resume`` fails without a GPU.

The command line is BasicSR's (``-opt``, ``--launcher``, ``--auto_resume``, ``--debug``,
``--local_rank``, ``--force_yml``); it is checked here first so that a missing option file or a
``--force_yml`` entry that names no existing option is reported in one line, not a traceback.
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

EPILOG = """\
--force_yml overrides options of the YAML file, keys separated by ':', e.g.
  --force_yml datasets:train:dataroot_gt=/data/DIV2K_train_HR_sub.lmdb train:total_iter=1000
Values are parsed by BasicSR: numbers, true/false, ~ (None), [lists]; anything else is a string.
Only options present in the file (or new keys in an existing section) can be set.
"""


class UsageError(Exception):
    """A problem with the command line or the files it names, reported without a traceback."""


def build_parser(prog: str, description: str, is_train: bool) -> argparse.ArgumentParser:
    """BasicSR's command line (``basicsr.utils.options.parse_options``), with help."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, metavar='YAML', help='option file, e.g. options/train_lesrcnn_x2.yml')
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
    """Raise ``UsageError`` if the option file cannot be read or a --force_yml entry cannot apply."""
    if not osp.isfile(args.opt):
        raise UsageError(f'option file {args.opt} not found')
    try:
        with open(args.opt, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise UsageError(f'{args.opt} is not valid YAML: {exc}') from exc
    if not isinstance(opt, dict):
        raise UsageError(f'{args.opt} must hold a mapping of options')
    for entry in args.force_yml or ():
        if entry.count('=') != 1:
            raise UsageError(f'--force_yml {entry!r}: expected KEY:KEY=VALUE with exactly one "="')
        keys = entry.split('=')[0].strip().split(':')
        section = opt
        for depth, key in enumerate(keys[:-1]):
            section = section.get(key) if isinstance(section, dict) else None
            if not isinstance(section, dict):
                raise UsageError(f'--force_yml {entry!r}: {args.opt} has no section {":".join(keys[:depth + 1])}')


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
    check_resume(opt, resume_state['iter'])
    return resume_state


@contextlib.contextmanager
def _basicsr_command_line(prog: str, argv: Sequence[str]) -> Iterator[None]:
    """BasicSR parses ``sys.argv`` itself: hand it ours, and put the original back afterwards."""
    saved_argv, saved_loader = sys.argv, basicsr_train.load_resume_state
    sys.argv = [prog, *argv]
    basicsr_train.load_resume_state = load_resume_state
    try:
        yield
    finally:
        sys.argv, basicsr_train.load_resume_state = saved_argv, saved_loader


def run(pipeline: Callable[[str], None], prog: str, description: str, is_train: bool,
        argv: Sequence[str] | None = None) -> int:
    """Check the command line, then run ``pipeline(root_path=cwd)`` on it; returns an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog, description, is_train).parse_args(argv)
    try:
        check_args(args)
        with _basicsr_command_line(prog, argv):
            pipeline(os.getcwd())
    except (UsageError, FileNotFoundError, lmdb.Error) as exc:
        print(f'{prog}: error: {exc}', file=sys.stderr)
        return 1
    return 0


def train_pipeline(root_path: str) -> None:
    """``basicsr.train.train_pipeline`` (looked up at call time, so that the resume loader above applies)."""
    basicsr_train.train_pipeline(root_path)


def test_pipeline(root_path: str) -> None:
    """``basicsr.test.test_pipeline``."""
    basicsr_test.test_pipeline(root_path)
