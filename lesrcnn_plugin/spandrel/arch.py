"""The LESRCNN family as a spandrel ``Architecture``: detection by key names, loading through the
package's own checkpoint reader.

spandrel hands ``detect`` and ``load`` a *canonical* state dict: containers such as BasicSR's
``params``/``params_ema`` and MMagic's ``state_dict`` are unwrapped and a common ``module.`` prefix is
removed, but MMagic's ``generator.`` prefix is kept (spandrel strips only ``module.`` and
``netG.``). Detection therefore accepts three key layouts:

* the authors' (``conv1.0.weight`` ... ``conv18.0.weight``, ``sub_mean.shifter.*``,
  ``upsample.up.body.*`` or, multi-scale, ``upsample.up2|up3|up4.body.*``);
* this package's plain names (``information_extraction.*``, ``reconstruction.upsamplers.x{s}.*``,
  ``refinement.*``, ``subtract_mean.*``);
* the plain names under ``generator.`` (an MMagic checkpoint).

Renaming, unwrapping and the choice of network and hyper-parameters are all left to
``lesrcnn_plugin.checkpoint``, so that spandrel loads exactly what ``lesrcnn-upscale`` loads.
"""
from __future__ import annotations

from spandrel import Architecture, ImageModelDescriptor, ModelTiling, SizeRequirements, StateDict
from spandrel.util import KeyCondition
from typing_extensions import override

from ..archs import DualKernelLESRCNN, LESRCNNBody
from ..archs.blocks import SUPPORTED_SCALES
from ..checkpoint import model_from_state, to_plugin_state


def _official_keys() -> KeyCondition:
    """The authors' layout. ``conv17_*`` (the IRB) is not required, so that the ablations without
    one are claimed too; ``sub_mean.shifter`` with ``conv1``..``conv18`` already names LESRCNN
    (CARN, whose code LESRCNN's grew from, shares ``sub_mean.shifter`` but not the ``convN`` names)."""
    return KeyCondition.has_all(
        'sub_mean.shifter.weight',
        'add_mean.shifter.weight',
        'conv1.0.weight',
        'conv2.0.weight',
        'conv3.0.weight',
        'conv16.0.weight',
        'conv17.0.weight',
        'conv18.0.weight',
        KeyCondition.has_any(
            'upsample.up.body.0.weight',
            *(f'upsample.up{scale}.body.0.weight' for scale in SUPPORTED_SCALES),
        ),
    )


def _plain_keys(prefix: str = '') -> KeyCondition:
    """This package's layout, each key under ``prefix``. Stage 0's extraction layer is a plain 3x3
    convolution in every network of the family (the dual-kernel one included), and stage 7 is the
    last of the eight stages every network has."""
    return KeyCondition.has_all(
        *(prefix + key for key in (
            'subtract_mean.weight',
            'add_mean.weight',
            'information_extraction.shallow.weight',
            'information_extraction.stages.0.extract.weight',
            'information_extraction.stages.0.fuse.weight',
            'information_extraction.stages.7.fuse.weight',
            'refinement.to_rgb.weight',
        )),
        KeyCondition.has_any(
            *(f'{prefix}reconstruction.upsamplers.x{scale}.0.weight' for scale in SUPPORTED_SCALES),
        ),
    )


class LESRCNNArch(Architecture[LESRCNNBody]):
    """``LESRCNN``, ``MultiScaleLESRCNN`` (LESRCNN-S) and ``DualKernelLESRCNN`` under one spandrel id.

    The network class, its scales, width and variant are read from the weights by
    ``lesrcnn_plugin.checkpoint``. A multi-scale network is described at its default scale (its
    first); ``descriptor.model(x, scale=k)`` runs another one.

    The ablations ``ieeb_rb``, ``ieeb`` and ``hn`` hold the same weights and differ only in their
    forward pass, which spandrel cannot be told: ``load`` refuses them with a ``CheckpointError``
    (load them with ``lesrcnn_plugin.checkpoint.load_model(path, variant=...)``).
    """

    def __init__(self) -> None:
        super().__init__(
            id='LESRCNN',
            detect=KeyCondition.has_any(_official_keys(), _plain_keys(), _plain_keys('generator.')),
        )

    @override
    def load(self, state_dict: StateDict) -> ImageModelDescriptor[LESRCNNBody]:
        # The package's reader strips the ``generator.`` prefix spandrel keeps and renames the authors'
        # keys; ``model_from_state`` picks the network from the weights and loads them strictly.
        state = to_plugin_state(state_dict)
        model = model_from_state(state)

        num_feat = model.information_extraction.shallow.out_channels
        tags = [f'{num_feat}nf', model.variant]
        if len(model.scales) > 1:
            tags += ['multi-scale', '/'.join(f'x{scale}' for scale in model.scales)]
        if isinstance(model, DualKernelLESRCNN):
            tags.append('dual-kernel')

        return ImageModelDescriptor(
            model,
            state,
            architecture=self,
            purpose='SR',
            tags=tags,
            # Plain convolutions, ReLUs and pixel shuffles: fp16 and bf16 run on CPU and CUDA alike.
            supports_half=True,
            supports_bfloat16=True,
            # What ``net(x)`` runs: the only scale, or a multi-scale network's default (its first).
            scale=model.default_scale,
            input_channels=3,  # the mean shifts are fixed to RGB
            output_channels=3,
            # Fully convolutional with 'same' padding and no downsampling: any size from 1x1 runs.
            size_requirements=SizeRequirements(),
            # No global operation and a receptive field of about 13 LR pixels each way: tiles that
            # overlap by that much stitch without seams.
            tiling=ModelTiling.SUPPORTED,
        )


__all__ = ['LESRCNNArch']
