"""The shipped recipes by name: ``lesrcnn:NAME`` for a BasicSR options file or an MMagic config.

The recipes are the repository's ``options/*.yml`` (BasicSR) and ``configs/**/*.py`` (MMagic, with
their ``_base_`` files). A wheel carries copies of both folders inside the package, under
``lesrcnn_plugin/.mim/`` as OpenMMLab packages ship theirs (``setup.py`` copies them at build time);
a clone or an editable install reads the folders at the repository root. Either way a recipe is
named by its file stem::

    lesrcnn:train_lesrcnn_x2       -> options/train_lesrcnn_x2.yml          (BasicSR options)
    lesrcnn:lesrcnn_x2_div2k       -> configs/lesrcnn/lesrcnn_x2_div2k.py   (MMagic config)

MMagic configs refer to their ``_base_`` files by relative paths, which hold in both layouts.
:func:`resolve_recipe` is what a command line calls on a path argument: a ``lesrcnn:`` name becomes
the file's path, anything else is returned unchanged. ``lesrcnn-recipes`` lists, shows and copies
the recipes.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from .errors import RecipeError

#: What marks a recipe name on a command line.
PREFIX = 'lesrcnn:'
#: Recipe kinds: the folder each lives in, and what it is.
KINDS = {'options': 'BasicSR options', 'configs': 'MMagic config'}
_SUFFIXES = {'options': '.yml', 'configs': '.py'}
_AS_COMPLEMENT = {'options': 'BasicSR options', 'configs': 'an MMagic config'}  # "X is <this>"

_PACKAGE_DIR = Path(__file__).resolve().parent
#: Where to look, in order: the copies inside an installed wheel, then the root of a clone (which is
#: also where an editable install reads them).
RECIPE_ROOTS = (_PACKAGE_DIR / '.mim', _PACKAGE_DIR.parent)


@dataclass(frozen=True)
class Recipe:
    """A shipped recipe.

    Attributes:
        name: the file stem, e.g. ``train_lesrcnn_x2``; ``lesrcnn:<name>`` on a command line.
        kind: ``'options'`` (BasicSR) or ``'configs'`` (MMagic), a key of :data:`KINDS`.
        path: the file.
    """

    name: str
    kind: str
    path: Path

    @property
    def reference(self) -> str:
        """The name as a command line takes it: ``lesrcnn:<name>``."""
        return PREFIX + self.name


def recipe_root() -> Path:
    """The folder holding ``options/`` and ``configs/``: the installed copies, else the clone's."""
    for root in RECIPE_ROOTS:
        # configs/lesrcnn, not just two folders named options/ and configs/, which a site-packages
        # directory could hold for another distribution.
        if (root / 'options').is_dir() and (root / 'configs' / 'lesrcnn').is_dir():
            return root
    raise RecipeError(f'the recipes (options/, configs/) are not installed beside {_PACKAGE_DIR}: '
                      'reinstall lesrcnn-plugin, or run from a clone')


def list_recipes(kind: str | None = None) -> list[Recipe]:
    """Every recipe, or those of one ``kind``, sorted by kind then name.

    MMagic configs are the ``.py`` files under ``configs/`` except the ``_base_`` files, which are
    parts of configs rather than configs of their own.
    """
    _check_kind(kind)
    root = recipe_root()
    recipes = [Recipe(path.stem, 'options', path) for path in (root / 'options').glob('*.yml')]
    recipes += [Recipe(path.stem, 'configs', path) for path in (root / 'configs').rglob('*.py')
                if '_base_' not in path.relative_to(root / 'configs').parts]
    return sorted((r for r in recipes if kind in (None, r.kind)), key=lambda r: (r.kind != 'options', r.name))


def find_recipe(name: str, kind: str | None = None) -> Recipe:
    """The recipe called ``name`` (with or without the ``lesrcnn:`` prefix and the file suffix).

    ``kind`` restricts the search to one kind (a BasicSR command takes no MMagic config). Raises
    :class:`RecipeError` naming the closest names when there is no such recipe.
    """
    _check_kind(kind)
    stem = name[len(PREFIX):] if name.startswith(PREFIX) else name
    for suffix in _SUFFIXES.values():
        stem = stem.removesuffix(suffix)
    recipes = list_recipes()
    for recipe in recipes:
        if recipe.name == stem and kind in (None, recipe.kind):
            return recipe
    other = next((r for r in recipes if r.name == stem), None)
    if other is not None:  # it exists, as the other kind
        raise RecipeError(f'{PREFIX}{stem} is {_AS_COMPLEMENT[other.kind]}, not {_AS_COMPLEMENT[kind]}')
    wanted = KINDS[kind] if kind else 'recipe'
    candidates = [r.name for r in recipes if kind in (None, r.kind)]
    close = difflib.get_close_matches(stem, candidates, n=3, cutoff=0.6)
    hint = f'; did you mean {", ".join(PREFIX + c for c in close)}?' if close else ''
    raise RecipeError(f'no {wanted} named {PREFIX}{stem}{hint} (lesrcnn-recipes list shows them all)')


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f'kind must be one of {sorted(KINDS)} or None, got {kind!r}')


def resolve_recipe(text: str, kind: str | None = None) -> str:
    """The file a command-line argument names: ``lesrcnn:NAME`` -> the recipe's path, else ``text``.

    Returns a string, so that it can replace the argument wherever a path string is expected.
    ``kind`` (``'options'`` or ``'configs'``) makes a name of the other kind an error.
    """
    if not text.startswith(PREFIX):
        return text
    return str(find_recipe(text, kind).path)


__all__ = ['KINDS', 'PREFIX', 'RECIPE_ROOTS', 'Recipe', 'RecipeError', 'find_recipe', 'list_recipes',
           'recipe_root', 'resolve_recipe']
