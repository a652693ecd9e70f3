"""Every shell and Python example of README.md and docs/*.md, run as written.

Each fenced ``bash``/``sh``/``python`` block is one test (its id: ``docs/inference.md:17``). A block
runs in a fresh temporary folder, the user's working directory, with the virtual environment's
``bin`` first on PATH (as after ``source .venv/bin/activate``). The recipes and tools of the clone
(``options/``, ``configs/``, ``tools/``) are linked into that folder, since the README's examples run
from the repository root; nothing is written into the clone.

What a block needs and the test cannot provide is declared by a comment on the line just before its
fence, which the reader does not see rendered::

    <!-- example: needs DIV2K -->                 skipped, the reason naming what it needs
    <!-- example: needs a GPU; slow -->           several items, separated by ';'
    <!-- example: slow -->                        run, marked slow (pytest -m "not slow" leaves it out)
    <!-- example: after the block above -->      run in the same folder, after the previous block of
                                                  the same page (which it builds on)

Blocks with no comment must run. Weights by name (``lesrcnn_x2``) come from a local HTTP mirror on
127.0.0.1 laid out from ``../shared/weights`` through ``$LESRCNN_WEIGHTS_MIRROR``, into a temporary
cache, so that nothing is downloaded from the internet; such blocks skip, saying why, when
``../shared`` is absent. ``needs weights`` says the same of a block that names no weights itself.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, shared_path
from lesrcnn_plugin.weights import WEIGHTS

PAGES = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
FENCE = re.compile(r'^(?P<indent>[ \t]*)```(?P<language>[\w+-]*)[ \t]*$')
MARKER = re.compile(r'^[ \t]*<!--[ \t]*example:(?P<items>.*?)-->[ \t]*$')
INTERPRETERS = {'bash': ['bash', '-e', '-o', 'pipefail'], 'sh': ['bash', '-e', '-o', 'pipefail'],
                'shell': ['bash', '-e', '-o', 'pipefail'], 'python': ['python']}  # from the venv, through PATH
# What these tests can provide; anything else a block needs skips it.
PROVIDED = {'weights'}
WEIGHTS_NAME = re.compile(r'\b(?:' + '|'.join(map(re.escape, WEIGHTS)) + r')\b')
LINKED_FROM_CLONE = ('options', 'configs', 'tools')
VENV_BIN = Path(sys.executable).parent
TIMEOUT_S = 900


@dataclass(frozen=True)
class Example:
    """One fenced block of a page and what its marker says."""

    id: str  # page:line of the opening fence, e.g. docs/inference.md:17
    language: str
    code: str
    needs: tuple[str, ...] = ()
    slow: bool = False
    after: Example | None = None  # the block it builds on, run first in the same folder

    def chain(self) -> list[Example]:
        """This block, preceded by those it builds on, oldest first."""
        return ([] if self.after is None else self.after.chain()) + [self]

    def needs_weights(self) -> bool:
        return any('weights' in example.needs or WEIGHTS_NAME.search(example.code) for example in self.chain())


def parse_marker(text: str, where: str) -> dict:
    """The items of an ``<!-- example: ... -->`` comment: ``needs X``, ``slow``, ``after the block above``."""
    parsed = {'needs': [], 'slow': False, 'after': False}
    for item in filter(None, (part.strip() for part in text.split(';'))):
        if item == 'slow':
            parsed['slow'] = True
        elif item == 'after the block above':
            parsed['after'] = True
        elif item.startswith('needs '):
            parsed['needs'].append(item[len('needs '):].strip())
        else:
            raise ValueError(f'{where}: unknown example marker item {item!r} (needs X, slow, after the block above)')
    return parsed


def examples_of(page: Path, root: Path = REPO) -> list[Example]:
    """The runnable blocks of a page, in order; their ids name the page relative to ``root``."""
    lines = page.read_text(encoding='utf-8').splitlines()
    examples, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening or not opening['language']:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not re.match(rf'^{opening["indent"]}```[ \t]*$', lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f'{page}:{index + 1}: the fence opened here is never closed')
        language = opening['language']
        if language in INTERPRETERS:
            where = f'{page.relative_to(root)}:{index + 1}'
            marker = MARKER.match(lines[index - 1]) if index else None
            parsed = parse_marker(marker['items'], where) if marker else parse_marker('', where)
            if parsed['after'] and not examples:
                raise ValueError(f'{where}: "after the block above", but no block comes before it')
            examples.append(Example(where, language, textwrap.dedent('\n'.join(lines[index + 1:end])) + '\n',
                                    tuple(parsed['needs']), parsed['slow'], examples[-1] if parsed['after'] else None))
        index = end + 1
    return examples


EXAMPLES = [example for page in PAGES for example in examples_of(page)]


def test_the_pages_have_examples_and_markers_are_read():
    ids = {example.id: example for example in EXAMPLES}
    assert len(ids) == len(EXAMPLES) > 20
    assert all(example.language in INTERPRETERS for example in EXAMPLES)
    assert any(example.needs for example in EXAMPLES) and any(not example.needs for example in EXAMPLES)


def test_marker_parsing(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('text\n\n```bash\necho one\n```\n<!-- example: needs DIV2K; slow -->\n```python\nprint(2)\n```\n'
                    '<!-- example: after the block above -->\n  ```sh\n  echo three\n  ```\n```yaml\na: 1\n```\n')
    first, second, third = examples_of(page, root=tmp_path)
    assert (first.id, first.language, first.code, first.needs, first.slow) == ('page.md:3', 'bash', 'echo one\n', (),
                                                                               False)
    assert (second.needs, second.slow, second.code) == (('DIV2K',), True, 'print(2)\n')
    assert third.after == second and third.code == 'echo three\n'
    assert [example.id for example in third.chain()] == ['page.md:7', 'page.md:11']
    page.write_text('<!-- example: needs X; fast -->\n```bash\necho\n```\n')
    with pytest.raises(ValueError, match="unknown example marker item 'fast'"):
        examples_of(page, root=tmp_path)


@pytest.fixture(scope='module')
def weights_mirror(tmp_path_factory):
    """Base URL of a local mirror of the authors' files in the upstream layout (``x2/lesrcnn_x2.pth``)."""
    from test_weights import MirrorServer

    source = shared_path('weights', 'lesrcnn_official')
    root = tmp_path_factory.mktemp('mirror')
    for entry in WEIGHTS.values():
        target = root / entry.relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / Path(entry.relative_path).name, target)
    server = MirrorServer(root)
    yield server.url
    server.stop()


@pytest.fixture(scope='module')
def weights_cache(tmp_path_factory) -> Path:
    """One cache for the module: the mirror is read once per file, as a user's cache would be."""
    return tmp_path_factory.mktemp('weights_cache')


def run_example(example: Example, folder: Path, env: dict) -> subprocess.CompletedProcess:
    """Run one block as a script in ``folder``; a shell block stops at its first failing command."""
    script = folder / ('example.py' if example.language == 'python' else 'example.sh')
    script.write_text(example.code, encoding='utf-8')
    return subprocess.run([*INTERPRETERS[example.language], script.name], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def example_environment(folder: Path, weights_cache: Path) -> dict:
    """A user's shell after ``source .venv/bin/activate``, with a cache of its own and no way to the internet
    (a block that needs weights gets the local mirror instead of the unreachable address)."""
    env = {**os.environ, 'PATH': f'{VENV_BIN}{os.pathsep}{os.environ.get("PATH", "")}',
           'VIRTUAL_ENV': str(VENV_BIN.parent), 'LESRCNN_WEIGHTS_DIR': str(weights_cache),
           'LESRCNN_WEIGHTS_MIRROR': 'http://127.0.0.1:9/unreachable', 'TORCH_HOME': str(folder / 'torch_home'),
           'MPLBACKEND': 'Agg', 'NO_PROXY': '127.0.0.1', 'no_proxy': '127.0.0.1'}
    env.pop('LESRCNN_OFFICIAL_WEIGHTS', None)
    return env


@pytest.mark.parametrize('example', [pytest.param(example, id=example.id,
                                                   marks=[pytest.mark.slow] if example.slow else [])
                                     for example in EXAMPLES])
def test_example_runs_as_written(example, tmp_path, weights_cache, request):
    missing = [need for step in example.chain() for need in step.needs if need not in PROVIDED]
    if missing:
        pytest.skip(f'{example.id} needs {"; ".join(missing)}')
    env = example_environment(tmp_path, weights_cache)
    if example.needs_weights():
        env['LESRCNN_WEIGHTS_MIRROR'] = request.getfixturevalue('weights_mirror')
    for name in LINKED_FROM_CLONE:
        (tmp_path / name).symlink_to(REPO / name, target_is_directory=True)
    for step in example.chain():
        result = run_example(step, tmp_path, env)
        assert result.returncode == 0, (f'{step.id} exited with {result.returncode}\n'
                                        f'--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}')
