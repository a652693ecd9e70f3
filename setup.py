"""lesrcnn-plugin: the LESRCNN family of lightweight SR networks for BasicSR and MMagic.

The one source of the package's metadata (pyproject.toml only names the build backend). Besides the
package, a wheel carries the recipes: the repository's options/*.yml (BasicSR) and configs/ (MMagic,
with their _base_ files and metafile), copied into lesrcnn_plugin/.mim/ as OpenMMLab packages ship
theirs; lesrcnn_plugin.recipes finds them there, or at the root of a clone. mim finds
``.mim/model-index.yml`` there too (``mim search lesrcnn-plugin``).

Both a wheel and an editable install also put ``lesrcnn_plugin_basicsr_hook.pth`` into site-packages:
one line that installs ``lesrcnn_plugin.basicsr_hook``, so that BasicSR's own ``basicsr/train.py``
finds the LESRCNN family (docs/basicsr.md, "BasicSR's own scripts").
"""
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Recipe files by folder (relative to the repository root), copied to lesrcnn_plugin/.mim/<folder>.
RECIPES = {'options': ['*.yml'], 'configs': ['**/*.py', '**/*.yml', '**/*.md'], '.': ['model-index.yml']}
# The startup file (site-packages root) and its one line; LESRCNN_NO_BASICSR_HOOK=1 switches it off.
HOOK_PTH = 'lesrcnn_plugin_basicsr_hook.pth'
HOOK_LINE = 'import lesrcnn_plugin.basicsr_hook; lesrcnn_plugin.basicsr_hook.install()\n'

CONSOLE_SCRIPTS = [
    'lesrcnn-convert = lesrcnn_plugin.cli.convert_checkpoint:main',
    'lesrcnn-count-flops = lesrcnn_plugin.cli.count_flops:main',
    'lesrcnn-measure-runtime = lesrcnn_plugin.cli.measure_runtime:main',
    'lesrcnn-measure-training = lesrcnn_plugin.cli.measure_training:main',
    'lesrcnn-prepare-div2k = lesrcnn_plugin.cli.prepare_div2k:main',
    'lesrcnn-prepare-testsets = lesrcnn_plugin.cli.prepare_testsets:main',
    'lesrcnn-upscale = lesrcnn_plugin.cli.upscale:main',
    'lesrcnn-export-onnx = lesrcnn_plugin.cli.export_onnx:main',
    'lesrcnn-demo = lesrcnn_plugin.cli.demo:main',
    'lesrcnn-recipes = lesrcnn_plugin.cli.recipes:main',
    # BasicSR entry points (python -m lesrcnn_plugin.basicsr.train / .test), through a module that checks for
    # the "basicsr" extra before importing lesrcnn_plugin.basicsr (which imports BasicSR)
    'lesrcnn-train = lesrcnn_plugin.cli.basicsr_commands:train',
    'lesrcnn-test = lesrcnn_plugin.cli.basicsr_commands:test',
    # MMagic entry points (tools/train.py / tools/test.py), through a module that checks for the
    # "mmagic" extra before importing lesrcnn_plugin.mmagic (which imports MMagic)
    'lesrcnn-mmagic-train = lesrcnn_plugin.cli.mmagic_commands:train',
    'lesrcnn-mmagic-test = lesrcnn_plugin.cli.mmagic_commands:test',
]

# Extras are named by what they enable; a command whose extra is missing says which one to install.
EXTRAS = {
    # basicsr 1.4.2 is sdist-only and declares setup_requires=['torch']: install it with
    # --no-build-isolation into an environment that already has torch (see README).
    'basicsr': ['basicsr==1.4.2', 'tensorboard'],
    # mmcv must be built with compiled ops (mmcv.ops); see tools/setup_env.sh.
    # mmagic.datasets imports albumentations, which mmagic 1.2.0 does not declare.
    'mmagic': ['mmagic==1.2.0', 'mmengine>=0.10.5,<0.11', 'mmcv>=2.0.0,<2.2.0', 'albumentations<1.4', 'tensorboard'],
    'onnx': ['onnx', 'onnxruntime'],        # lesrcnn-export-onnx and its parity check
    'plots': ['matplotlib'],                # lesrcnn-measure-runtime's plot
    'demo': ['scikit-image'],               # lesrcnn-demo's bundled photographs
    'spandrel': ['spandrel>=0.4,<0.5'],     # lesrcnn_plugin.spandrel (ComfyUI, chaiNNer)
}
EXTRAS['all'] = sorted({requirement for extra in EXTRAS.values() for requirement in extra})
EXTRAS['dev'] = ['pytest>=7', 'pytest-xdist>=3.5', 'import-linter>=2.1']  # import-linter: the layers of pyproject.toml (tests/test_layers.py)


class BuildPyWithRecipes(build_py):
    """``build_py`` that also writes the startup file ``HOOK_PTH`` and copies the recipes (``RECIPES``)
    into ``lesrcnn_plugin/.mim/``.

    A wheel, and so every non-editable install, gets both: the ``.pth`` at the root of ``build_lib``
    (the wheel's purelib, i.e. site-packages). An editable install skips the recipes (its package is
    the clone's folder, beside the recipes themselves); its ``build_lib`` is thrown away, so the
    ``.pth`` goes where setuptools' ``editable_wheel`` points ``install_lib``: the root of the
    editable wheel it is assembling, which pip unpacks into site-packages.
    """

    def run(self):
        super().run()
        if self.editable_mode:
            self.write_hook_pth(self.get_finalized_command('install').install_lib)
            return
        self.write_hook_pth(self.build_lib)
        target = Path(self.build_lib) / 'lesrcnn_plugin' / '.mim'
        shutil.rmtree(target, ignore_errors=True)  # no recipe deleted from the source survives a rebuild
        for folder, patterns in RECIPES.items():
            for pattern in patterns:
                for source in sorted((ROOT / folder).glob(pattern)):
                    destination = target / source.relative_to(ROOT)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, destination)

    def write_hook_pth(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / HOOK_PTH).write_text(HOOK_LINE, encoding='utf-8')


setup(
    name='lesrcnn-plugin',
    version='0.1.0',
    description='LESRCNN lightweight super-resolution networks for BasicSR and MMagic',
    long_description=(ROOT / 'README.md').read_text(encoding='utf-8') if (ROOT / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license_expression='Apache-2.0',  # PEP 639 (setuptools >= 77); the text is LICENSE
    python_requires='>=3.11',  # hashlib.file_digest (weights.py)
    packages=find_packages(include=['lesrcnn_plugin', 'lesrcnn_plugin.*']),
    include_package_data=True,
    install_requires=['torch>=2.0', 'numpy', 'opencv-python', 'Pillow', 'lmdb', 'tqdm', 'pyyaml'],
    extras_require=EXTRAS,
    entry_points={'console_scripts': CONSOLE_SCRIPTS},
    cmdclass={'build_py': BuildPyWithRecipes},
    classifiers=[
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3 :: Only',
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Image Processing',
        'Framework :: PyTorch',
    ],
)
