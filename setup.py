"""lesrcnn-plugin: the LESRCNN family of lightweight SR networks for BasicSR and MMagic."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent

CONSOLE_SCRIPTS = [
    'lesrcnn-convert = lesrcnn_plugin.cli.convert_checkpoint:main',
    'lesrcnn-count-flops = lesrcnn_plugin.cli.count_flops:main',
    'lesrcnn-measure-runtime = lesrcnn_plugin.cli.measure_runtime:main',
    'lesrcnn-prepare-div2k = lesrcnn_plugin.cli.prepare_div2k:main',
    'lesrcnn-prepare-testsets = lesrcnn_plugin.cli.prepare_testsets:main',
    'lesrcnn-upscale = lesrcnn_plugin.cli.upscale:main',
    'lesrcnn-export-onnx = lesrcnn_plugin.cli.export_onnx:main',
    'lesrcnn-demo = lesrcnn_plugin.cli.demo:main',
    # BasicSR entry points (python -m lesrcnn_plugin.train / .test)
    'lesrcnn-train = lesrcnn_plugin.train:main',
    'lesrcnn-test = lesrcnn_plugin.test:main',
    # MMagic entry points (tools/train.py / tools/test.py)
    'lesrcnn-mmagic-train = lesrcnn_plugin.mmagic.train:main',
    'lesrcnn-mmagic-test = lesrcnn_plugin.mmagic.test:main',
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
EXTRAS['dev'] = ['pytest>=7']

setup(
    name='lesrcnn-plugin',
    version='0.1.0',
    description='LESRCNN lightweight super-resolution networks for BasicSR and MMagic',
    long_description=(ROOT / 'README.md').read_text(encoding='utf-8') if (ROOT / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['lesrcnn_plugin', 'lesrcnn_plugin.*']),
    include_package_data=True,
    install_requires=['torch>=2.0', 'numpy', 'opencv-python', 'Pillow', 'lmdb', 'tqdm', 'pyyaml'],
    extras_require=EXTRAS,
    entry_points={'console_scripts': CONSOLE_SCRIPTS},
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Image Processing',
        'Framework :: PyTorch',
    ],
)
