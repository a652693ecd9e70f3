"""The LESRCNN family as a spandrel ``Architecture``: detection and loading through the package's own
checkpoint reader.

spandrel hands ``detect`` and ``load`` a *canonical* state dict: containers such as BasicSR's
``params``/``params_ema`` and MMagic's ``state_dict`` are unwrapped and a common ``module.`` prefix is
removed, but MMagic's ``generator.`` prefix is kept (spandrel strips only ``module.`` and ``netG.``).
Detection is therefore the package's own (``checkpoint.is_family_checkpoint``), derived from the
tables that reading follows: the containers and prefixes of ``checkpoint.FILE_FORMATS``, and each
registered network's distinctive keys in its own layout and in the layouts its spec maps (the
authors': ``conv1.0.weight`` ... ``conv18.0.weight``, ``sub_mean.shifter.*``, ``upsample.up*.body.*``).
A network registered later (``archs.register_network``) is detected without re-registering.

Renaming, unwrapping and the choice of network and hyper-parameters are all left to
``lesrcnn_plugin.checkpoint``, so that spandrel loads exactly what ``lesrcnn-upscale`` loads.
"""
from __future__ import annotations

from spandrel import Architecture, ImageModelDescriptor, ModelTiling, SizeRequirements, StateDict
from torch import nn
from typing_extensions import override

from ..archs import spec_of
from ..checkpoint import is_family_checkpoint, model_from_state, to_plugin_state


class LESRCNNArch(Architecture[nn.Module]):
    """Every registered network (``LESRCNN``, ``MultiScaleLESRCNN``, ``DualKernelLESRCNN``, ...) under one spandrel id.

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
            detect=is_family_checkpoint,
        )

    @override
    def load(self, state_dict: StateDict) -> ImageModelDescriptor[nn.Module]:
        # The package's reader strips the ``generator.`` prefix spandrel keeps and renames the authors'
        # keys; ``model_from_state`` picks the network from the weights and loads them strictly.
        state = to_plugin_state(state_dict)
        model = model_from_state(state)

        num_feat = model.information_extraction.shallow.out_channels
        tags = [f'{num_feat}nf', model.variant]
        if len(model.scales) > 1:
            tags += ['multi-scale', '/'.join(f'x{scale}' for scale in model.scales)]
        tags += spec_of(model).tags

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
