"""The ComfyUI custom node folder (``integrations/comfyui``), exercised as ComfyUI runs it, without ComfyUI.

ComfyUI imports a custom node folder's ``__init__.py`` by path (``spec_from_file_location`` under the
folder's name, in ``nodes.load_custom_node``) and reads its ``NODE_CLASS_MAPPINGS``. Its "Load Upscale
Model" node reads the file with ``torch.load(weights_only=True)`` and hands the state dict to
``spandrel.ModelLoader().load_from_state_dict``, which must give an ``ImageModelDescriptor``; its
"Upscale Image (using Model)" node moves the B x H x W x C float image to B x C x H x W, calls the
descriptor (in 512-pixel tiles when the image is larger), clamps and moves it back.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path

from lesrcnn_plugin.archs import LESRCNN
from lesrcnn_plugin.cli import upscale as upscale_cli

REPO = Path(__file__).resolve().parents[1]
NODE = REPO / 'integrations' / 'comfyui'

# Run in a fresh interpreter: spandrel's MAIN_REGISTRY is process-wide, and other tests register
# LESRCNN into it. argv: node folder, weights file, input image (.npy, H x W x 3 RGB float), output.
COMFYUI_SIDE = '''
import importlib.util, json, os, sys
import numpy as np, torch
import spandrel

node_folder, weights, image, output = sys.argv[1:]
registered_before = 'LESRCNN' in spandrel.MAIN_REGISTRY
# ComfyUI's nodes.load_custom_node
module_name = os.path.basename(node_folder)
spec = importlib.util.spec_from_file_location(module_name, os.path.join(node_folder, '__init__.py'))
module = importlib.util.module_from_spec(spec)
sys.modules[module_name] = module
spec.loader.exec_module(module)
# ComfyUI's UpscaleModelLoader
state_dict = torch.load(weights, map_location='cpu', weights_only=True)
model = spandrel.ModelLoader().load_from_state_dict(state_dict).eval()
# ComfyUI's ImageUpscaleWithModel (no tiling below 512 pixels)
image = torch.from_numpy(np.load(image))[None]
with torch.inference_mode():
    sr = model(image.movedim(-1, -3).float())
sr = torch.clamp(sr.movedim(-3, -1), min=0, max=1.0)
np.save(output, sr[0].numpy())
print(json.dumps({'registered_before': registered_before, 'registered_after': 'LESRCNN' in spandrel.MAIN_REGISTRY,
                  'node_classes': module.NODE_CLASS_MAPPINGS, 'descriptor': type(model).__name__,
                  'architecture': model.architecture.id, 'scale': model.scale}))
'''


def test_node_folder_registers_lesrcnn_and_upscales_as_lesrcnn_upscale_does(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / 'lesrcnn_x2.pth'
    torch.save(LESRCNN(2, num_feat=16).state_dict(), weights)
    rng = np.random.default_rng(0)
    bgr = cv2.resize(rng.integers(0, 256, (8, 10, 3), np.uint8), (50, 40), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / 'photo.png'), bgr)
    np.save(tmp_path / 'photo.npy', bgr[..., ::-1].astype(np.float32) / 255)  # ComfyUI's LoadImage: RGB / 255

    result = subprocess.run([sys.executable, '-c', COMFYUI_SIDE, str(NODE), str(weights), str(tmp_path / 'photo.npy'),
                             str(tmp_path / 'comfyui.npy')], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report == {'registered_before': False, 'registered_after': True, 'node_classes': {},
                      'descriptor': 'ImageModelDescriptor', 'architecture': 'LESRCNN', 'scale': 2}

    assert upscale_cli.main(['-c', str(weights), str(tmp_path / 'photo.png'), '-o', str(tmp_path / 'out')]) == 0
    cli = cv2.imread(str(tmp_path / 'out' / 'photo_x2.png'))[..., ::-1].astype(np.int16)
    comfyui = np.load(tmp_path / 'comfyui.npy')
    assert comfyui.shape == cli.shape == (80, 100, 3)
    # Rounded as lesrcnn-upscale rounds: the same image (a value on a .5 boundary may flip by one level).
    rounded = np.rint(comfyui * 255).astype(np.int16)
    assert np.abs(rounded - cli).max() <= 1 and (rounded != cli).mean() < 1e-3
    # ComfyUI's "Save Image" truncates (np.clip(255 * x, 0, 255).astype(uint8)): never above, at most a level below.
    truncated = np.clip(255.0 * comfyui, 0, 255).astype(np.uint8).astype(np.int16)
    assert ((cli - truncated) >= -1).all() and ((cli - truncated) <= 1).all()


def load_measure_tool():
    spec = importlib.util.spec_from_file_location('measure_upscale_tiling', REPO / 'tools' / 'measure_upscale_tiling.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_comfyui_tiles_blend_a_few_levels_off_at_the_seams_only(official_weights):
    """Above 512 pixels ComfyUI tiles (512, overlap 32, linear blend): near the seam its output is not
    the network's, by at most 3 levels; elsewhere it is. lesrcnn-upscale's tiles are exact."""
    import spandrel

    import lesrcnn_plugin.spandrel  # noqa: F401
    from lesrcnn_plugin.safe_load import load_untrusted

    tool = load_measure_tool()
    photo = cv2.imread(str(shared_path('datasets', 'Set5', 'HR', 'baby.png')))
    rgb = cv2.resize(photo, (600, 96), interpolation=cv2.INTER_AREA)[..., ::-1].astype(np.float32) / 255
    model = spandrel.ModelLoader().load_from_state_dict(dict(load_untrusted(official_weights(2)))).eval()
    x = torch.from_numpy(np.ascontiguousarray(rgb))[None].movedim(-1, -3)
    with torch.inference_mode():
        untiled = model(x)
        tiled = tool.comfyui_tiled_scale(x, lambda a: model(a.float()), 2)
    exact = np.rint(255 * untiled.numpy()).astype(int)[0]  # lesrcnn-upscale's 8 bits, tiled or not

    def seam_and_elsewhere(levels):  # tiles start at 0 and 480 (every 512 - 32): they overlap on HR 960-1023
        return levels[..., 960:1024], np.concatenate([levels[..., :960], levels[..., 1024:]], axis=-1)

    # The blend alone, both rounded: off at the seam; elsewhere one tile gives each pixel, the
    # network's output up to a rare rounding flip (a 512-wide tile takes other convolution kernels).
    seam, elsewhere = seam_and_elsewhere(np.abs(np.rint(255 * tiled.clamp(0, 1).numpy()).astype(int)[0] - exact))
    assert 1 <= seam.max() <= 3 and seam.mean() > 10 * elsewhere.mean()
    assert elsewhere.max() <= 1 and (elsewhere > 0).mean() < 1e-3
    # What ComfyUI saves (truncated to 8 bits): at most 3 levels off at the seam, 1 elsewhere.
    saved = np.clip(255.0 * tiled.clamp(0, 1).numpy(), 0, 255).astype(np.uint8).astype(int)[0]
    seam, elsewhere = seam_and_elsewhere(np.abs(saved - exact))
    assert 2 <= seam.max() <= 3 and elsewhere.max() <= 1
