"""The networks of docs/comparison.md, the published figures checked against them, and the PSNR quoted
beside them (data for make_comparison.py).

Every row is built from its own framework's code in the configuration of the published table it is
compared with (``variant``), named by the spec ``lesrcnn-count-flops --arch`` takes. Its parameter
count is checked (tests/test_comparison.py) against ``params``: a published figure, or a closed form,
and where the count does not match the published figure the row says why. A quoted PSNR is copied from
the table named in its ``source`` and only where that table was read; figures that circulate but
could not be checked against their primary table are named in ``unverified`` instead of being quoted.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ParamsFigure:
    """The parameter count a row is checked against.

    Attributes:
        printed: As printed: ``'792K'`` (checked to that rounding) or ``'11,840'`` (exact).
        source: Where it is printed, or the closed form it comes from.
        differs: Why the deployed count does not match it ('' when it matches).
    """
    printed: str
    source: str
    differs: str = ''


@dataclasses.dataclass(frozen=True)
class Quote:
    """Published x4 PSNR (dB, Y channel), the table it was read from, and the benchmarks that table gives."""
    source: str
    set5: float | None = None
    set14: float | None = None
    b100: float | None = None
    urban100: float | None = None


@dataclasses.dataclass(frozen=True)
class Measured:
    """Set5 PSNR / SSIM (Y) measured with this package (authors' weights, EDSR layout, SR rounded)."""
    scale: int
    psnr: float
    ssim: float


@dataclasses.dataclass(frozen=True)
class Entry:
    """One row of the comparison.

    Attributes:
        label: Row name.
        variant: The configuration of the published table the row stands for.
        spec: ``--arch`` spec (``LESRCNN``, ``basicsr:EDSR``, ``mmagic:SRCNNNet``, ``module:callable``).
        kwargs: Constructor arguments.
        framework: Where the code comes from.
        params: The figure its parameter count is checked against.
        needs: Module that must import for the row to be built (its extra), or ``None``.
        scale: Scale to build with (LESRCNN family; and networks whose scale a 3-channel probe cannot read).
        luma: The published network works on Y: built with one input channel, run on the first channel.
        deployed: The published network is the re-parameterised one (``comparison_deploy.deploy``).
        quote: Published PSNR, where its table was read.
        psnr_of: The network the quote belongs to, when it is not exactly this one.
        measured: Set5 figures measured here (LESRCNN with the authors' weights).
        unverified: Figures that circulate for this network but could not be checked against their table.
        note: What a reader must know to compare the row.
    """
    label: str
    variant: str
    spec: str
    kwargs: dict
    framework: str
    params: ParamsFigure
    needs: str | None = None
    scale: int | None = None
    luma: bool = False
    deployed: bool = False
    quote: Quote | None = None
    psnr_of: str | None = None
    measured: tuple[Measured, ...] = ()
    unverified: str = ''
    note: str = ''


SWINIR_LIGHT = dict(upscale=4, img_size=64, window_size=8, img_range=1.0, depths=[6, 6, 6, 6], embed_dim=60,
                    num_heads=[6, 6, 6, 6], mlp_ratio=2, upsampler='pixelshuffledirect', resi_connection='1conv')
#: Set5 with the authors' released weights (README; tests/test_weights.py checks them to 4 decimals).
LESRCNN_SET5 = (Measured(2, 37.7957, 0.9598), Measured(3, 34.0247, 0.9243), Measured(4, 31.9215, 0.8915))
#: The lightweight-SR table of the Omni-SR paper (PSNR / SSIM on five benchmarks at x2, x3, x4), read in the
#: LaTeX source its authors publish beside their code.
OMNISR_TABLE = ('Omni-SR\'s lightweight-SR table (label tab:psnr-ssim, "Quantitative comparison (PSNR/SSIM) for '
                'lightweight image SR"; LaTeX source in the authors\' repository, Francis0625/Omni-SR, result.tex)')
LESRCNN_PAPER = ('The paper\'s own Set5 table could not be read here (no text copy of it was found), so it is '
                 'not quoted; the paper reports Urban100 x2 31.45 dB (README).')

ENTRIES = (
    Entry('LESRCNN x2', 'released code and weights (x2)', 'LESRCNN', {}, 'this package', scale=2,
          params=ParamsFigure('516K', 'LESRCNN paper, Table 9',
                              'the released code holds 626,328; no block accounts for the 110K '
                              '(docs/complexity.md)'),
          measured=LESRCNN_SET5[:1], note=LESRCNN_PAPER),
    Entry('LESRCNN x4', 'released code and weights (x4)', 'LESRCNN', {}, 'this package', scale=4,
          params=ParamsFigure('774,040', 'closed form of the released x4 code (docs/complexity.md)'),
          measured=LESRCNN_SET5[2:], note=LESRCNN_PAPER),
    Entry('DualKernelLESRCNN x2', 'upgraded LESRCNN of the authors\' repository (x2)', 'DualKernelLESRCNN', {},
          'this package', scale=2,
          params=ParamsFigure('855,704', 'closed form of the authors\' code (README)'),
          note='No released weights.'),
    Entry('MultiScaleLESRCNN (LESRCNN-S), x4 branch', 'LESRCNN-S of the authors\' repository', 'MultiScaleLESRCNN',
          {}, 'this package', scale=4, params=ParamsFigure('1,254,104', 'closed form of the authors\' code (README)'),
          unverified='No released weights; the paper\'s LESRCNN-S rows could not be read here.',
          note='Parameters include the x2, x3 and x4 upsamplers; MACs those of x4 only.'),
    Entry('EDSR-baseline x4', 'EDSR-baseline: 16 blocks, 64 channels, RGB', 'basicsr:EDSR',
          dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4), 'BasicSR', needs='basicsr',
          params=ParamsFigure('1.5M', 'EDSR paper (Lim et al., CVPRW 2017), Table 1 (baseline)'),
          quote=Quote(f'the x4 EDSR row (1,518K parameters: the baseline) of {OMNISR_TABLE}; a secondary source',
                      set5=32.09, set14=28.58, b100=27.57, urban100=26.04),
          note='The EDSR paper gives benchmark PSNR for the full EDSR only; its baseline is reported on DIV2K '
               'validation images (28.95 dB x4, the authors\' README). The benchmark figures quoted are those '
               'later papers re-quote for the baseline, read here from Omni-SR\'s table.'),
    Entry('MSRResNet x4', 'BasicSR\'s MSRResNet (SRResNet without batch normalisation)', 'basicsr:MSRResNet',
          dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4), 'BasicSR', needs='basicsr',
          params=ParamsFigure('1,517,571', 'closed form: 16 residual blocks of two 64->64 3x3 convolutions, head, '
                                            'two x2 upsamplers, two output convolutions'),
          quote=Quote('SRResNet, Ledig et al., CVPR 2017 (SRGAN paper), Table 2', set5=32.05),
          psnr_of='SRResNet',
          note='The quoted PSNR is the original SRResNet\'s (with batch normalisation), not MSRResNet\'s.'),
    Entry('SRVGGNetCompact x4', 'Real-ESRGAN\'s compact network (realesr-general-x4v3: 32 convs)',
          'basicsr:SRVGGNetCompact_basicsr',
          dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type='prelu'), 'BasicSR',
          needs='basicsr', params=ParamsFigure('621,424', 'closed form: 17 3x3 convolutions and 17 PReLUs'),
          note='Built with 16 convolutions (BasicSR\'s default); trained for real-world degradations: no '
               'bicubic PSNR published.'),
    Entry('ECBSR-M4C16 x4', 'ECBSR-M4C16 as deployed: Y channel, branches folded', 'basicsr:ECBSR',
          dict(num_in_ch=1, num_out_ch=1, num_block=4, num_channel=16, with_idt=False, act_type='prelu', scale=4),
          'BasicSR', needs='basicsr', scale=4, luma=True, deployed=True,
          params=ParamsFigure('11,840', 'closed form of the folded network: six 3x3 convolutions (1->16, 4x '
                                        '16->16, 16->16) and five 16-channel PReLUs'),
          unverified='ECBSR\'s published table (Zhang et al., ACM MM 2021) could not be read here.',
          note='The authors train and deploy on Y (`colors: 1`); the trained network carries the edge-oriented '
               'branches that fold into one 3x3 convolution per block.'),
    Entry('SwinIR-light x4', 'SwinIR lightweight (60 channels, 4 RSTB of 6 layers)',
          'spandrel.architectures.SwinIR:SwinIR', SWINIR_LIGHT, 'spandrel', needs='spandrel',
          params=ParamsFigure('897K', 'SwinIR paper (Liang et al., ICCVW 2021), Table 3',
                              'the count here includes the 24 relative-position bias tables (15 x 15 x 6 = 1,350 '
                              'each, 32,400), which the paper\'s figure leaves out'),
          quote=Quote('SwinIR, Liang et al., ICCV Workshops 2021, Table 3 (lightweight SR)', set5=32.44,
                      urban100=26.47),
          note='spandrel\'s SwinIR pads the input to a multiple of the window (8), as the authors\' test does. '
               'The paper gives 49.6G Mult-Adds at 720p, 19% below the count here (61.3G for the unpadded '
               '180x320 input); how the paper counted is not stated. At any input size but img_size (64x64) '
               'this code rebuilds its attention masks at every call, which dominates its GPU time.'),
    Entry('SRCNN x4', 'SRCNN 9-5-5, Y channel (as evaluated in VDSR\'s Table 3)', 'mmagic:SRCNNNet',
          dict(channels=(1, 64, 32, 1), kernel_sizes=(9, 5, 5), upscale_factor=4), 'MMagic', needs='mmagic',
          scale=4, luma=True,
          params=ParamsFigure('57,281', 'closed form: 9x9 1->64, 5x5 64->32, 5x5 32->1 with biases (57K)'),
          quote=Quote('SRCNN as evaluated in VDSR, Kim et al., CVPR 2016, Table 3', set5=30.48, urban100=24.52),
          note='Runs at HR after a bicubic upsampling (not counted). MMagic\'s default is a 9-1-5 RGB network '
               '(20K parameters); the PSNR belongs to the 9-5-5 Y network built here.'),
    Entry('SPAN x4 (48 channels)', 'SPAN, 48 channels, deployed (re-parameterised)',
          'spandrel.architectures.SPAN:SPAN', dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=4),
          'spandrel', needs='spandrel', deployed=True,
          params=ParamsFigure('426,288', 'closed form of the folded 48-channel network (the 498K often cited is '
                                         'the folded 52-channel network: 498,208)'),
          unverified='SPAN\'s published PSNR table (NTIRE 2024 ESR report) could not be read here.',
          note='spandrel keeps the training branches (2.24M parameters with them) and re-folds them at every eval '
               'forward; the row counts and times the folded network (comparison_deploy.py, exact fold).'),
    Entry('SAFMN x4', 'SAFMN efficient SR (36 channels, 8 blocks)', 'spandrel.architectures.SAFMN:SAFMN',
          dict(dim=36, n_blocks=8, ffn_scale=2.0, upscaling_factor=4), 'spandrel', needs='spandrel',
          params=ParamsFigure('240K', 'SAFMN paper (Sun et al., ICCV 2023), Table 1'),
          unverified='Set5 / Urban100 x4 32.18 / 25.97 circulate for SAFMN; its tables are images in the authors\' '
                     'repository and could not be read here.'),
    Entry('OmniSR x4', 'Omni-SR (64 channels, 5 OSAG), DIV2K-trained row', 'spandrel.architectures.OmniSR:OmniSR',
          dict(num_in_ch=3, num_out_ch=3, num_feat=64, block_num=1, window_size=8, res_num=5, up_scale=4),
          'spandrel', needs='spandrel',
          params=ParamsFigure('792K', f'Omni-SR paper (Wang et al., CVPR 2023), abstract and the x4 row of '
                                      f'{OMNISR_TABLE}',
                              'FLAGGED: 805,376 here, and the authors\' code gives the same; no subset of the '
                              'parameters (relative-position biases 9,000, layer norms 5,120) accounts for '
                              'the 13K'),
          quote=Quote(f'Omni-SR, Wang et al., CVPR 2023: the x4 DIV2K-trained row of {OMNISR_TABLE}', set5=32.49,
                      set14=28.78, b100=27.71, urban100=26.64),
          note='The abstract\'s 26.95 dB (Urban100 x4) is the DF2K-trained network of the same table.'),
    Entry('PLKSR x4', 'PLKSR, the authors\' x4 configuration (DCCM, 28 blocks, 17x17)',
          'spandrel.architectures.PLKSR:PLKSR', dict(upscaling_factor=4, ccm_type='DCCM'), 'spandrel',
          needs='spandrel', params=ParamsFigure('7,386,096', 'closed form of the authors\' x4 configuration'),
          unverified='Set5 / Urban100 x4 32.54 / 26.69 circulate for PLKSR; the table could not be read here.',
          note='Not a lightweight network (7.4M parameters); shown for scale. No re-parameterisation in this '
               'configuration (lk_type PLK).'),
)


def params_match(printed: str, count: int) -> bool:
    """Whether ``count`` is the figure ``printed``, to the precision it is printed with: ``'792K'`` is
    791,500-792,499, ``'1.5M'`` 1.45M-1.55M, ``'11,840'`` exactly 11,840."""
    text = printed.replace(',', '')
    unit = {'K': 1_000, 'M': 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if unit > 1 else text
    decimals = len(number.partition('.')[2])
    step = unit / 10 ** decimals
    return round(count / step) == round(float(number) * unit / step)
