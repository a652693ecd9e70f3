"""The networks of docs/comparison.md, and the PSNR figures quoted beside them (data for make_comparison.py).

Every network is built from its own framework's code, with the configuration its paper reports, and
named by the spec ``lesrcnn-count-flops --arch`` takes. A quoted figure is copied from the table named
in ``source``; where no figure could be confirmed from a paper, the entry has none rather than a guess.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Quote:
    """Published x4 PSNR (dB, Y channel) and where it was published."""
    set5: float | None
    urban100: float | None
    source: str


@dataclasses.dataclass(frozen=True)
class Entry:
    """One row of the comparison.

    Attributes:
        label: Row name.
        spec: ``--arch`` spec (``LESRCNN``, ``basicsr:EDSR``, ``mmagic:SRCNNNet``, ``module:callable``).
        kwargs: Constructor arguments.
        framework: Where the code comes from (a column of the table).
        needs: Module that must import for the row to be built (its extra), or ``None``.
        scale: Scale to build a LESRCNN-family network with (others carry it in ``kwargs``).
        quote: Published PSNR, when one was confirmed.
        psnr_of: The network the quote belongs to, when it is not exactly this one.
        measured_set5: Set5 x4 PSNR measured by this package's test (LESRCNN x4 with the authors' weights).
        note: What a reader must know to compare the row.
    """
    label: str
    spec: str
    kwargs: dict
    framework: str
    needs: str | None = None
    scale: int | None = None
    quote: Quote | None = None
    psnr_of: str | None = None
    measured_set5: float | None = None
    note: str = ''


SWINIR_LIGHT = dict(upscale=4, img_size=64, window_size=8, img_range=1.0, depths=[6, 6, 6, 6], embed_dim=60,
                    num_heads=[6, 6, 6, 6], mlp_ratio=2, upsampler='pixelshuffledirect', resi_connection='1conv')

ENTRIES = (
    Entry('LESRCNN x2', 'LESRCNN', {}, 'this package', scale=2,
          note='x2 network: the x4 PSNR columns do not apply. The paper reports Urban100 x2 31.45 dB.'),
    Entry('LESRCNN x4', 'LESRCNN', {}, 'this package', scale=4, measured_set5=31.92,
          note='Set5 measured here with the authors\' released x4 weights (README; `lesrcnn-test`, EDSR layout).'),
    Entry('DualKernelLESRCNN x2', 'DualKernelLESRCNN', {}, 'this package', scale=2,
          note='x2 network (the upgraded LESRCNN); no released weights.'),
    Entry('MultiScaleLESRCNN (LESRCNN-S), x4 branch', 'MultiScaleLESRCNN', {}, 'this package', scale=4,
          note='Parameters include the x2, x3 and x4 upsamplers; MACs those of x4 only.'),
    Entry('EDSR-baseline x4', 'basicsr:EDSR',
          dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4), 'BasicSR', needs='basicsr',
          note='No PSNR quoted: the figure commonly listed for EDSR-baseline could not be traced to a primary '
               'table when this page was written.'),
    Entry('MSRResNet x4', 'basicsr:MSRResNet', dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4),
          'BasicSR', needs='basicsr',
          quote=Quote(32.05, None, 'SRResNet, Ledig et al., CVPR 2017 (SRGAN paper), Table 2; Urban100 not reported'),
          psnr_of='SRResNet',
          note='BasicSR\'s MSRResNet is SRResNet without batch normalisation: the quoted PSNR is the original '
               'SRResNet\'s.'),
    Entry('SRVGGNetCompact x4', 'basicsr:SRVGGNetCompact_basicsr',
          dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type='prelu'), 'BasicSR',
          needs='basicsr', note='Real-ESRGAN\'s compact network, trained for real-world degradations: no bicubic '
                                'PSNR published.'),
    Entry('ECBSR-M4C16 x4', 'basicsr:ECBSR',
          dict(num_in_ch=3, num_out_ch=3, num_block=4, num_channel=16, with_idt=False, act_type='prelu', scale=4),
          'BasicSR', needs='basicsr',
          note='Parameters are the training-time (multi-branch) ones; in eval mode BasicSR\'s ECBSR re-folds them '
               'into one 3x3 kernel per block at every forward, which is what the MACs count. Counted on the CPU '
               '(its folding does not run on the meta device).'),
    Entry('SwinIR-light x4', 'spandrel.architectures.SwinIR:SwinIR', SWINIR_LIGHT, 'spandrel', needs='spandrel',
          quote=Quote(32.44, 26.47, 'SwinIR, Liang et al., ICCV Workshops 2021, Table 3 (lightweight SR)'),
          note='spandrel\'s SwinIR pads the input to a multiple of the window (8), as the authors\' test does; '
               'BasicSR\'s does not and refuses a 180x320 input. The paper\'s 897K parameters exclude the 24 '
               'relative-position bias tables (15 x 15 x 6 = 1,350 each). It gives 49.6G Mult-Adds at 720p, '
               'about 19% below the count here for the unpadded 180x320 input (61.3G; the layers\' closed form '
               'gives the same); how the paper counted is not stated, so the gap is not explained here. At any '
               'input size but img_size (64x64) this code rebuilds its shifted-window attention masks on the CPU '
               'at every call and copies them to the device, which dominates its GPU time.'),
    Entry('SRCNN x4', 'mmagic:SRCNNNet', dict(channels=(3, 64, 32, 3), kernel_sizes=(9, 1, 5), upscale_factor=4),
          'MMagic', needs='mmagic',
          quote=Quote(30.48, 24.52, 'SRCNN 9-5-5 as evaluated in VDSR, Kim et al., CVPR 2016, Table 3'),
          note='Runs at HR after a bicubic upsampling (not counted); the paper\'s SRCNN works on the Y channel, '
               'MMagic\'s on RGB.'),
    Entry('SPAN x4 (48 channels)', 'spandrel.architectures.SPAN:SPAN',
          dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4), 'spandrel', needs='spandrel',
          note='Parameters include the training-time branches beside the folded eval kernels; spandrel\'s SPAN '
               're-folds its kernels at every eval forward (weight-sized convolutions, a constant ~0.72 GMAC that '
               'the MACs include and mmengine\'s trace does not see).'),
    Entry('SAFMN x4', 'spandrel.architectures.SAFMN:SAFMN', dict(dim=36, n_blocks=8, ffn_scale=2.0,
                                                                  upscaling_factor=4), 'spandrel', needs='spandrel'),
    Entry('OmniSR x4', 'spandrel.architectures.OmniSR:OmniSR',
          dict(num_in_ch=3, num_out_ch=3, num_feat=64, block_num=1, window_size=8, res_num=5, up_scale=4),
          'spandrel', needs='spandrel'),
    Entry('PLKSR x4 (spandrel defaults)', 'spandrel.architectures.PLKSR:PLKSR', dict(upscaling_factor=4), 'spandrel',
          needs='spandrel', note='spandrel\'s default configuration (dim 64, 28 blocks, 17x17 kernels): not a '
                                 'lightweight network; shown for scale.'),
)
