"""List, show and copy the shipped recipes: BasicSR options and MMagic configs, by name.

Examples::

    lesrcnn-recipes list                                     # every name, and where the files are
    lesrcnn-recipes show train_lesrcnn_x2                    # the file, as shipped
    lesrcnn-recipes show --path lesrcnn:lesrcnn_x2_div2k     # only its path, e.g. for mim:
    mim train mmagic "$(lesrcnn-recipes show --path lesrcnn_x2_div2k)"
    lesrcnn-recipes copy train_lesrcnn_x2 my_x2.yml          # a copy to edit
    lesrcnn-recipes copy lesrcnn_x2_div2k configs/           # -> configs/lesrcnn_x2_div2k.py

Commands take a recipe as ``lesrcnn:NAME`` wherever they take its file: ``lesrcnn-train -opt
lesrcnn:train_lesrcnn_x2``, ``lesrcnn-mmagic-train lesrcnn:lesrcnn_x2_div2k``. NAME may be given here
with or without the ``lesrcnn:`` prefix.

``copy`` writes a BasicSR options file as shipped. An MMagic config is written whole, its
``_base_`` files merged in (as ``mim download`` writes OpenMMLab configs), so that the copy works
wherever it is put; this needs the "mmagic" extra (mmengine). An existing file is not replaced
unless --overwrite is given (--force, its former name, still works in this release and says so), and
the shipped file itself never is.

Nothing here imports torch: listing and showing the recipes takes a fraction of a second.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..fileio import atomic_path
from ..recipes import Recipe, find_recipe, list_recipes, recipe_root
from ._common import OutputGuard, add_overwrite_argument, require, run

#: The listing's heading for each kind of recipe: what it is, and the commands that take it.
HEADINGS = {'options': 'BasicSR options (lesrcnn-train / lesrcnn-test -opt lesrcnn:NAME)',
            'configs': 'MMagic configs (lesrcnn-mmagic-train / lesrcnn-mmagic-test lesrcnn:NAME)'}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='lesrcnn-recipes', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True, metavar='{list,show,copy}')
    commands.add_parser('list', help='every recipe name, by kind, with its file')
    show = commands.add_parser('show', help='print a recipe file')
    show.add_argument('name', help='recipe name, e.g. train_lesrcnn_x2 or lesrcnn:lesrcnn_x2_div2k')
    show.add_argument('--path', action='store_true', help='print the file\'s path instead of its text')
    copy = commands.add_parser('copy', help='write a copy to edit (an MMagic config with its _base_ merged in)')
    copy.add_argument('name', help='recipe name')
    copy.add_argument('dest', nargs='?', default='.',
                      help='file to write, or an existing folder to write NAME.yml / NAME.py into (default: .)')
    add_overwrite_argument(copy, 'an existing destination file')
    copy.add_argument('--force', action='store_true', help='deprecated: use --overwrite')
    return parser.parse_args(argv)


def list_all() -> None:
    """Print every recipe, grouped by kind, with its path relative to the recipes folder."""
    root = recipe_root()
    recipes = list_recipes()
    width = max(len(recipe.reference) for recipe in recipes)
    for kind, heading in HEADINGS.items():
        print(f'{heading}:')
        for recipe in (r for r in recipes if r.kind == kind):
            print(f'  {recipe.reference:<{width}}  {recipe.path.relative_to(root)}')
    print(f'recipes folder: {root}')


def show(name: str, path_only: bool) -> None:
    recipe = find_recipe(name)
    if path_only:
        print(recipe.path)
    else:
        sys.stdout.write(recipe.path.read_text(encoding='utf-8'))


def copy(name: str, dest: str, overwrite: bool) -> None:
    """Write recipe ``name`` to ``dest``: that file, or a file of the recipe's name in that folder."""
    recipe = find_recipe(name)
    target = Path(dest)
    if target.is_dir():
        target = target / recipe.path.name
    OutputGuard([recipe.path], overwrite).check(target)
    with atomic_path(target) as tmp:
        if recipe.kind == 'configs':
            write_merged_config(recipe, tmp)
        else:
            shutil.copyfile(recipe.path, tmp)
    print(f'{recipe.reference} -> {target}')


def write_merged_config(recipe: Recipe, path: Path) -> None:
    """Write MMagic config ``recipe`` with its ``_base_`` files merged in, as one config file."""
    require('mmagic', 'mmengine', needed_by=f'copying the MMagic config {recipe.reference}')
    from mmengine.config import Config

    # The plugin's registrations (custom_imports) are not needed to read the config, only to run it.
    config = Config.fromfile(str(recipe.path), import_custom_modules=False)
    path.write_text(f'# {recipe.reference} ({recipe.path.name}) with its _base_ files merged in, '
                    f'written by lesrcnn-recipes copy.\n' + config.pretty_text, encoding='utf-8')


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command == 'copy' and args.force:
        print('warning: lesrcnn-recipes copy --force is deprecated and will be removed in the next release: '
              'use --overwrite, as every other command does', file=sys.stderr)
        args.overwrite = True
    commands = {'list': list_all,
                'show': lambda: show(args.name, args.path),
                'copy': lambda: copy(args.name, args.dest, args.overwrite)}
    return run(commands[args.command])


if __name__ == '__main__':
    sys.exit(main())
