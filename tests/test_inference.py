"""Inference: receptive-field margin, seamless tiling, x8 self-ensemble, image handling and the upscale CLI."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import shared_path
from lesrcnn_plugin.archs import DualKernelLESRCNN, LESRCNN, MultiScaleLESRCNN
from lesrcnn_plugin.archs.fast import FastLESRCNN
from lesrcnn_plugin.checkpoint import FORMATS, CheckpointError, load_model, save_checkpoint
from lesrcnn_plugin.cli import upscale as upscale_cli
from lesrcnn_plugin.errors import ImageError
from lesrcnn_plugin.image_io import read_image, write_image
from lesrcnn_plugin.inference import (BT601_LUMA_RGB, prepare_network, receptive_field_margin, self_ensemble_forward,
                                      upscale_image, upscale_tensor)


def small(cls, *args, **kwargs):
    torch.manual_seed(0)
    return cls(*args, num_feat=16, **kwargs).eval()


NETWORKS = {
    'x2': lambda: small(LESRCNN, 2),
    'x3': lambda: small(LESRCNN, 3),
    'x4': lambda: small(LESRCNN, 4),
    'sn_x2': lambda: small(LESRCNN, 2, variant='sn'),
    'ieeb_x3': lambda: small(LESRCNN, 3, variant='ieeb'),
    'dual_x2': lambda: small(DualKernelLESRCNN, 2),
    'multi_x3': lambda: small(MultiScaleLESRCNN, (2, 3), default_scale=3),
}


def influence_radius(model: nn.Module, scale: int, reach: int) -> int:
    """How far (in LR pixels, up to ``reach + 1``) one input pixel's change reaches in the output, measured."""
    size = 2 * reach + 3
    centre = size // 2
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    poked = x.clone()
    poked[0, :, centre, centre] = torch.tensor([5.0, -5.0, 5.0])
    with torch.inference_mode():
        changed = (model(poked) - model(x)).abs().amax(1)[0] > 0
    rows, cols = changed.nonzero(as_tuple=True)
    cells = torch.cat([rows, cols]) // scale
    return int((cells - centre).abs().max())


@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_margin_bounds_the_measured_receptive_field(name):
    model = NETWORKS[name]()
    scale = model.default_scale
    margin = receptive_field_margin(model)
    measured = influence_radius(model, scale, reach=margin)
    assert measured <= margin
    if model.variant == 'full':
        # Tight up to the half pixel the x4 second upsampler stage is rounded up by. (Random plain
        # stacks without residual sums, sn and ieeb, lose the signal before their border.)
        assert measured >= margin - 1
    assert receptive_field_margin(FastLESRCNN(model)) == margin


def test_margin_of_lesrcnn_counts_every_layer():
    # 1 shallow + 8 extraction 3x3 layers + upsampler convs + ceil(5 HR layers / scale)
    assert [receptive_field_margin(LESRCNN(k, num_feat=8)) for k in (2, 3, 4)] == [13, 12, 13]
    assert receptive_field_margin(MultiScaleLESRCNN((2, 3, 4), num_feat=8), scale=4) == 13


@pytest.mark.parametrize('name, fast', [(name, True) for name in sorted(NETWORKS)] + [('x2', False)])
def test_tiled_equals_untiled(name, fast):
    model = NETWORKS[name]()
    network = FastLESRCNN(model) if fast else model
    x = torch.rand(1, 3, 29, 23, generator=torch.Generator().manual_seed(2))  # odd sizes, partial last tiles
    whole = upscale_tensor(network, x)
    tiled = upscale_tensor(network, x, tile=10)  # overlap defaults to the margin
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() <= 1e-5
    # Without context around the tiles the seams show: the comparison above can fail.
    seams = upscale_tensor(network, x, tile=10, tile_overlap=0)
    assert (seams - whole).abs().max() > 1e-3


def test_tiled_self_ensemble_equals_untiled_self_ensemble():
    network = FastLESRCNN(NETWORKS['x3']())
    x = torch.rand(1, 3, 21, 21, generator=torch.Generator().manual_seed(3))  # square: fewer tile shapes
    whole = upscale_tensor(network, x, self_ensemble=True)
    tiled = upscale_tensor(network, x, self_ensemble=True, tile=8)
    assert (tiled - whole).abs().max() <= 1e-5


class SymmetricToy(nn.Module):
    """Flip- and rot90-equivariant x2 network: D4-symmetric kernels, nearest upsampling, ReLU.

    It follows the family's calling contract (``scales``, ``default_scale``, ``net(x, scale=k)``).
    """

    scales, default_scale = (2,), 2

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(4)
        self.first = nn.Parameter(self.symmetrise(torch.randn(8, 3, 3, 3, generator=generator)))
        self.last = nn.Parameter(self.symmetrise(torch.randn(3, 8, 3, 3, generator=generator)))

    @staticmethod
    def symmetrise(kernel: torch.Tensor) -> torch.Tensor:
        views = [torch.rot90(k, turns, dims=(-2, -1)) for k in (kernel, kernel.flip(-1)) for turns in range(4)]
        return torch.stack(views).mean(0)

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        h = F.relu(F.conv2d(x, self.first, padding=1))
        return F.conv2d(F.interpolate(h, scale_factor=2, mode='nearest'), self.last, padding=1)


def test_self_ensemble_of_an_equivariant_network_is_its_plain_output():
    toy = SymmetricToy().eval()
    x = torch.rand(1, 3, 13, 18, generator=torch.Generator().manual_seed(5))
    plain = upscale_tensor(toy, x)
    assert (upscale_tensor(toy, x, self_ensemble=True) - plain).abs().max() <= 1e-5


def test_self_ensemble_is_equivariant_and_changes_a_non_equivariant_network():
    network = FastLESRCNN(NETWORKS['x2']())
    x = torch.rand(1, 3, 13, 18, generator=torch.Generator().manual_seed(6))
    ensemble = upscale_tensor(network, x, self_ensemble=True)
    assert (ensemble - upscale_tensor(network, x)).abs().max() > 1e-4
    # Averaging over the whole symmetry group makes any network equivariant.
    turned = upscale_tensor(network, torch.rot90(x, 1, dims=(-2, -1)), self_ensemble=True)
    assert (turned - torch.rot90(ensemble, 1, dims=(-2, -1))).abs().max() <= 1e-5
    flipped = self_ensemble_forward(lambda t: network(t), x.flip(-1))
    assert (flipped - ensemble.flip(-1)).abs().max() <= 1e-5


# ------------------------------------------------------------------------------------- images


@pytest.fixture(scope='module')
def network():
    return FastLESRCNN(NETWORKS['x2']())


def random_image(shape, dtype=np.uint8, seed=7):
    high = np.iinfo(dtype).max + 1
    return np.random.default_rng(seed).integers(0, high, size=shape, dtype=np.int64).astype(dtype)


def network_rgb(network, rgb: np.ndarray) -> np.ndarray:
    """The network on an (H, W, 3) float RGB array, clamped: what upscale_image should reproduce."""
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()
    return upscale_tensor(network, x)[0].clamp(0, 1).permute(1, 2, 0).numpy()


def test_bgr_image_goes_through_the_network_as_rgb(network):
    image = random_image((9, 11, 3))
    out = upscale_image(network, image)
    assert out.shape == (18, 22, 3) and out.dtype == np.uint8
    expected = np.rint(network_rgb(network, image[..., ::-1] / 255.0)[..., ::-1] * 255)
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_gray_stays_gray_via_bt601_luma(network):
    image = random_image((9, 11))
    out = upscale_image(network, image)
    assert out.shape == (18, 22) and out.dtype == np.uint8
    rgb = network_rgb(network, np.repeat(image[..., None] / 255.0, 3, axis=2))
    expected = np.rint(rgb @ np.array(BT601_LUMA_RGB) * 255)
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert upscale_image(network, image[..., None]).shape == (18, 22, 1)


@pytest.mark.parametrize('channels', [2, 4])
def test_alpha_is_resized_bicubically_and_kept(network, channels):
    image = random_image((9, 11, channels))
    out = upscale_image(network, image)
    assert out.shape == (18, 22, channels)
    alpha = cv2.resize(image[..., -1].astype(np.float32) / 255, (22, 18), interpolation=cv2.INTER_CUBIC)
    assert np.abs(out[..., -1].astype(int) - np.rint(np.clip(alpha, 0, 1) * 255)).max() <= 1
    # The colour is what the network gives without the alpha channel.
    colour = upscale_image(network, image[..., :-1] if channels == 4 else image[..., 0])
    assert np.array_equal(out[..., :-1].squeeze(-1) if channels == 2 else out[..., :-1], colour)


def test_16_bit_in_16_bit_out(network):
    image = random_image((9, 11, 3), np.uint16)
    out = upscale_image(network, image)
    assert out.dtype == np.uint16 and out.shape == (18, 22, 3)
    expected = np.rint(network_rgb(network, image[..., ::-1] / 65535.0)[..., ::-1] * 65535)
    assert np.abs(out.astype(np.int64) - expected).max() <= 1
    # The full 16-bit precision is kept, not 8 bits scaled up.
    assert np.any(out % 257 != 0)


def test_image_round_trip_and_corrupt_file(tmp_path):
    image = random_image((5, 6, 4), np.uint16)
    write_image(tmp_path / 'a.png', image)
    assert np.array_equal(read_image(tmp_path / 'a.png'), image)
    assert [p.name for p in tmp_path.iterdir()] == ['a.png']  # no temporary file left behind
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG not really')
    with pytest.raises(ImageError, match='bad.png'):
        read_image(tmp_path / 'bad.png')


# ----------------------------------------------------------------------------------------- CLI


def write_pngs(folder, count=2, size=(10, 12)):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        cv2.imwrite(str(folder / f'img{index}.png'), random_image((*size, 3), seed=index))


@pytest.fixture(scope='module')
def random_x3():
    torch.manual_seed(8)
    return LESRCNN(3).eval()  # num_feat=64: what a checkpoint's loader infers


@pytest.mark.parametrize('fmt', FORMATS)
def test_cli_detects_every_checkpoint_format(tmp_path, random_x3, fmt):
    checkpoint = tmp_path / f'weights_{fmt}.pth'
    save_checkpoint(random_x3.state_dict(), checkpoint, fmt)
    write_pngs(tmp_path / 'in', count=1)
    assert upscale_cli.main(['-c', str(checkpoint), str(tmp_path / 'in'), '-o', str(tmp_path / 'out')]) == 0
    out = read_image(tmp_path / 'out' / 'img0_x3.png')
    expected = upscale_image(random_x3, read_image(tmp_path / 'in' / 'img0.png'))
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_cli_picks_the_scale_of_a_multiscale_checkpoint(tmp_path):
    torch.manual_seed(9)
    model = MultiScaleLESRCNN((2, 3)).eval()
    save_checkpoint(model.state_dict(), tmp_path / 'multi.pth', 'basicsr')
    write_pngs(tmp_path / 'in', count=1)
    args = ['-c', str(tmp_path / 'multi.pth'), str(tmp_path / 'in' / 'img0.png'), '-o', str(tmp_path / 'out')]
    assert upscale_cli.main(args + ['--scale', '3', '--reference']) == 0
    assert read_image(tmp_path / 'out' / 'img0_x3.png').shape == (30, 36, 3)
    with pytest.raises(CheckpointError, match='not x4'):
        load_model(tmp_path / 'multi.pth', scale=4)


def test_cli_reports_a_corrupt_image_and_processes_the_rest(tmp_path, random_x3, capsys):
    save_checkpoint(random_x3.state_dict(), tmp_path / 'w.pth', 'official')
    write_pngs(tmp_path / 'in', count=2)
    (tmp_path / 'in' / 'broken.png').write_bytes(b'definitely not a png')
    (tmp_path / 'in' / 'notes.txt').write_text('not an image, skipped')
    code = upscale_cli.main(['-c', str(tmp_path / 'w.pth'), str(tmp_path / 'in'), '-o', str(tmp_path / 'out'),
                             '--tile', '6'])
    assert code == 1
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['img0_x3.png', 'img1_x3.png']
    err = capsys.readouterr().err
    assert 'broken.png: not a readable image' in err
    assert '1 failure(s):' in err.splitlines()[-2]


def test_cli_rejects_an_unreadable_checkpoint(tmp_path, capsys):
    write_pngs(tmp_path / 'in', count=1)
    (tmp_path / 'w.pth').write_bytes(b'junk')
    assert upscale_cli.main(['-c', str(tmp_path / 'w.pth'), str(tmp_path / 'in'), '-o', str(tmp_path / 'out')]) == 1
    assert 'w.pth: not a PyTorch checkpoint' in capsys.readouterr().err


@pytest.mark.parametrize('fmt', FORMATS)
def test_cli_with_the_official_weights_in_every_format(tmp_path, fmt):
    """The authors' x2 weights, converted to each format, reproduce the authors' own output."""
    official = shared_path('weights', 'lesrcnn_official', 'lesrcnn_x2.pth')
    reference = np.load(shared_path('reference', 'lesrcnn_official_outputs.npz'))
    model = load_model(official)
    checkpoint = tmp_path / f'x2_{fmt}.pth'
    save_checkpoint(model.state_dict(), checkpoint, fmt)
    lr_rgb = np.rint(reference['x2_input'][0].transpose(1, 2, 0) * 255).astype(np.uint8)
    write_image(tmp_path / 'in' / 'butterfly.png', lr_rgb[..., ::-1])
    assert upscale_cli.main(['-c', str(checkpoint), str(tmp_path / 'in'), '-o', str(tmp_path / 'out')]) == 0
    sr_rgb = read_image(tmp_path / 'out' / 'butterfly_x2.png')[..., ::-1].astype(int)
    expected = np.rint(np.clip(reference['x2_output'][0].transpose(1, 2, 0), 0, 1) * 255)
    assert np.abs(sr_rgb - expected).max() <= 1


@pytest.mark.parametrize('fast', [True, False], ids=['fast', 'reference'])
def test_prepare_network_leaves_the_model_untouched(fast):
    model = NETWORKS['x2']()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    network = prepare_network(model, fast=fast, dtype=torch.bfloat16, channels_last=True)
    assert next(network.parameters()).dtype == torch.bfloat16
    assert all(v.dtype == torch.float32 and torch.equal(v, before[k]) for k, v in model.state_dict().items())
    x = torch.rand(1, 3, 9, 10, generator=torch.Generator().manual_seed(10))
    low = upscale_tensor(network, x, channels_last=True)
    assert low.dtype == torch.float32 and (low - upscale_tensor(model, x)).abs().max() < 0.05


def test_cli_needs_and_takes_the_variant_of_an_ablation(tmp_path, capsys):
    torch.manual_seed(11)
    model = LESRCNN(2, variant='ieeb').eval()
    save_checkpoint(model.state_dict(), tmp_path / 'ieeb.pth', 'basicsr')
    write_pngs(tmp_path / 'in', count=1, size=(6, 7))
    args = ['-c', str(tmp_path / 'ieeb.pth'), str(tmp_path / 'in'), '-o', str(tmp_path / 'out')]
    assert upscale_cli.main(args) == 1
    assert 'pass the variant' in capsys.readouterr().err
    assert upscale_cli.main(args + ['--variant', 'ieeb', '--arch', 'LESRCNN']) == 0
    expected = upscale_image(model, read_image(tmp_path / 'in' / 'img0.png'))
    assert np.abs(read_image(tmp_path / 'out' / 'img0_x2.png').astype(int) - expected).max() <= 1
