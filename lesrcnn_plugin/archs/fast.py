"""An exact, faster inference path for every network of the LESRCNN family.

Algebraic rewrites, exact up to floating-point rounding:

* The RB upsampler is affine: ``up(a) = L(a) + c``, where ``L`` is linear and ``c`` comes from the
  biases alone. Hence ``up(a) + up(b) = L(a + b) + 2c``, which is ``up2(a + b)`` for an upsampler
  ``up2`` with the same weights and every bias doubled (for x4, the second stage is linear in the
  first stage's biased output, so doubling both stages' biases is again exact). One upsampler pass
  instead of two.
* The RB's ReLU commutes with the pixel shuffle (a permutation), so it is applied by the last
  upsampler convolution, before the shuffle.
* The output mean shift ``add_mean`` (a 1x1 convolution ``y = M x + c``) folds into the bias-free
  RGB projection before it: ``to_rgb'`` has weight ``M W`` and bias ``c``.

And three rewrites of the execution, not of the arithmetic:

* On CPU (float32) every convolution runs as a oneDNN convolution with its ReLU, and for
  the IEEB residual sums its addition, applied as post-ops (``torch.ops.mkldnn._convolution_pointwise``,
  the kernels ``torch.compile`` uses on CPU). Each feature map is then written once, instead of
  once by the convolution and again by each element-wise operation: on a 2-core CPU the element-wise
  passes cost about a third of the reference's time.
* On that fused CPU path, the RB upsampler and the IRB (everything at HR resolution) run in
  horizontal strips of at most 256x256 output pixels, each with a halo of LR rows wide enough for
  every layer's context, so that their feature maps stay in cache; the rows kept from each strip are
  computed exactly as in the whole image.
* Elsewhere (CUDA, float16, bfloat16, or ``fuse_kernels=False``) the same graph runs with PyTorch's
  convolutions and in-place ReLUs and sums, which avoid allocating a fresh tensor per operation.

The input mean shift is not folded into the first convolution: with zero padding that would change
the border pixels.

``FastLESRCNN(model)`` keeps the reference model untouched (``model`` mirrors the authors'
computation) and holds folded copies of the weights; call it like the model. It accepts NCHW and
channels_last input (``FastLESRCNN(model).to(memory_format=torch.channels_last)`` with a
channels_last input is the fastest on CPU) and returns the output in the input's memory format.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from .spec import spec_of

#: Output pixels per strip of the RB and IRB on the fused CPU path: a 64-channel float32 map of this size (16 MiB)
#: is what one 3x3 convolution processes at full speed from cache on a 2-core development machine
#: (the 256x256 map of the benchmark's roofline probe); larger maps are streamed from memory.
_STRIP_PIXELS = 256 * 256

#: dtypes for which the CPU path uses oneDNN's fused convolutions (its conv + add + ReLU falls back
#: to an operator without bfloat16 support in PyTorch 2.x, so other dtypes run unfused).
_FUSED_DTYPES = (torch.float32,)


def fused_kernels_available() -> bool:
    """Whether this PyTorch build has oneDNN's fused convolution (conv + add + ReLU) operator."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_convolution_pointwise')


def _doubled_bias_upsampler(upsampler: nn.Sequential) -> nn.Sequential:
    fused = copy.deepcopy(upsampler)
    with torch.no_grad():
        for layer in fused:
            if isinstance(layer, nn.Conv2d) and layer.bias is not None:
                layer.bias.mul_(2)
    return fused


def _fold_output_shift(to_rgb: nn.Conv2d, add_mean: nn.Conv2d) -> nn.Conv2d:
    folded = nn.Conv2d(to_rgb.in_channels, to_rgb.out_channels, to_rgb.kernel_size, padding=to_rgb.padding,
                       bias=True)
    mix = add_mean.weight.detach().flatten(1)  # (3, 3)
    with torch.no_grad():
        folded.weight.copy_(torch.einsum('oc,cikl->oikl', mix, to_rgb.weight.detach()))
        folded.bias.copy_(add_mean.bias.detach())
    return folded.to(to_rgb.weight.device, to_rgb.weight.dtype)


def _conv(x: torch.Tensor, conv: nn.Conv2d, fused: bool, relu: bool = False,
          accumulate: torch.Tensor | None = None, accumulate_in_place: bool = False) -> torch.Tensor:
    """``conv(x)``, plus ``accumulate`` when given, then ReLU when asked; one kernel when ``fused``.

    Args:
        x: Input feature map.
        conv: A stride-1 convolution with symmetric padding (every layer of the family).
        fused: Run oneDNN's convolution with the sum and the ReLU as post-ops.
        relu: Rectify the result.
        accumulate: Tensor added to the convolution's output before the ReLU.
        accumulate_in_place: Write the result into ``accumulate`` (the caller no longer needs its
            value); otherwise a new tensor is returned and ``accumulate`` is left unchanged.
    """
    if not fused:
        out = conv(x)
        if accumulate is not None:
            out.add_(accumulate)
        return out.relu_() if relu else out
    geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    unary = 'relu' if relu else 'none'
    if accumulate is None:
        return torch.ops.mkldnn._convolution_pointwise(x, conv.weight, conv.bias, *geometry, unary, [], '')
    binary_op = (torch.ops.mkldnn._convolution_pointwise_.binary if accumulate_in_place
                 else torch.ops.mkldnn._convolution_pointwise.binary)
    # The in-place overload takes the accumulator first; the other takes the input first.
    operands = (accumulate, x) if accumulate_in_place else (x, accumulate)
    return binary_op(*operands, conv.weight, conv.bias, *geometry, 'add', 1.0, unary if relu else None, [], None)


class FastLESRCNN(nn.Module):
    """Inference-only rewrite of a LESRCNN-family network, numerically equal to it.

    Args:
        model: A trained network of the family (any registered network built on ``LESRCNNBody``,
            any variant). It is not modified. Its spec says how its layers run
            (``parallel_convolutions``) and how far it sees (``receptive_field``).
        fuse_kernels: Use oneDNN's fused convolutions for CPU float32 input. ``None``
            (default) uses them when this PyTorch build has them; ``False`` always runs PyTorch's
            unfused operators (the path used on CUDA).

    Called like ``model``: ``net(x)`` at ``default_scale``, ``net(x, scale=k)`` for ``k`` in ``scales``.
    """

    def __init__(self, model: nn.Module, fuse_kernels: bool | None = None) -> None:
        super().__init__()
        spec = spec_of(model)
        if spec is None:
            raise TypeError(f'expected a registered network of the LESRCNN family, got {type(model).__name__}')
        if fuse_kernels and not fused_kernels_available():
            raise RuntimeError('fuse_kernels=True needs a PyTorch build with oneDNN (mkldnn) convolutions')
        self.fuse_kernels = fused_kernels_available() if fuse_kernels is None else fuse_kernels
        self.scales, self.default_scale = model.scales, model.default_scale  # the family's calling contract
        self.fuse_shallow = model.reconstruction.fuse_shallow
        self.subtract_mean = copy.deepcopy(model.subtract_mean)
        extraction = model.information_extraction
        self.shallow = copy.deepcopy(extraction.shallow)
        # Each extraction layer as the convolutions it runs side by side (one for a plain 3x3 layer).
        self.extract = nn.ModuleList(
            nn.ModuleList(copy.deepcopy(conv) for conv in spec.parallel_convolutions(stage.extract))
            for stage in extraction.stages)
        self.fuse = nn.ModuleList(copy.deepcopy(stage.fuse) for stage in extraction.stages)
        self.residual = [stage.residual for stage in extraction.stages]
        upsamplers = model.reconstruction.upsamplers
        self.upsamplers = nn.ModuleDict({
            name: _doubled_bias_upsampler(up) if self.fuse_shallow else copy.deepcopy(up)
            for name, up in upsamplers.items()})
        self.refinement_convs = copy.deepcopy(model.refinement.convs)
        self.to_rgb = _fold_output_shift(model.refinement.to_rgb, model.add_mean)
        #: LR pixels each scale's output sees around it: the tile overlap that leaves no seam.
        self.receptive_field_margins = {scale: spec.receptive_field(model, scale) for scale in self.scales}
        self.eval().requires_grad_(False)

    def uses_fused_kernels(self, x: torch.Tensor) -> bool:
        """Whether ``forward(x)`` runs oneDNN's fused convolutions (CPU, float32)."""
        return self.fuse_kernels and x.device.type == 'cpu' and x.dtype in _FUSED_DTYPES

    def _extract(self, h: torch.Tensor, convs: nn.ModuleList, fused: bool) -> torch.Tensor:
        if len(convs) == 1:
            return _conv(h, convs[0], fused, relu=True)
        return torch.cat([_conv(h, conv, fused, relu=True) for conv in convs], dim=1)

    def _upsample(self, features: torch.Tensor, scale: int, fused: bool) -> torch.Tensor:
        layers = list(self.upsamplers[f'x{scale}'])
        convs, shuffles = layers[0::2], layers[1::2]
        for index, (conv, shuffle) in enumerate(zip(convs, shuffles)):
            # The RB's ReLU (LESRCNN only) moves before the last shuffle, which only permutes pixels.
            last = index == len(convs) - 1
            features = F.pixel_shuffle(_conv(features, conv, fused, relu=last and self.fuse_shallow),
                                       shuffle.upscale_factor)
        return features

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        scale = self.default_scale if scale is None else scale
        if scale not in self.scales:
            raise ValueError(f'this network has upsamplers for scales {self.scales}, not {scale}')
        fused = self.uses_fused_kernels(x)
        shallow = _conv(_conv(x, self.subtract_mean, fused), self.shallow, fused, relu=True)
        h = shallow
        for index, (extract, fuse, residual) in enumerate(zip(self.extract, self.fuse, self.residual)):
            extracted = self._extract(h, extract, fused)
            # The first residual sum must not overwrite h_0, which the RB reuses.
            h = _conv(extracted, fuse, fused, relu=True, accumulate=h if residual else None,
                      accumulate_in_place=index > 0)
        if self.fuse_shallow:
            # up(deep) + up(shallow) == up2(deep + shallow); h is ours to overwrite (never h_0 here).
            h = h.add_(shallow) if h is not shallow else h + shallow
        return self._reconstruct(h, scale, fused)

    def _reconstruct_rows(self, h: torch.Tensor, scale: int, fused: bool) -> torch.Tensor:
        features = self._upsample(h, scale, fused)
        for conv in self.refinement_convs:
            features = _conv(features, conv, fused, relu=True)
        return _conv(features, self.to_rgb, fused)

    def _reconstruct(self, h: torch.Tensor, scale: int, fused: bool) -> torch.Tensor:
        """RB upsampling and the IRB; on the fused CPU path, in horizontal strips.

        The upsampled 64-channel map is several times the CPU's cache (67 MB at 512x512 output), so
        the upsampler's output, the pixel shuffle and every IRB layer would stream it from memory.
        Run strip by strip (at most ``_STRIP_PIXELS`` output pixels each), every map stays in cache.
        Each strip carries ``halo`` extra LR rows on each side, enough for every upsampler and IRB
        layer's context, so the rows it keeps are computed exactly as in the whole image.
        """
        if not fused:
            return self._reconstruct_rows(h, scale, fused)
        height, width = h.shape[-2:]
        rows = max(1, _STRIP_PIXELS // (width * scale * scale))
        if rows >= height:
            return self._reconstruct_rows(h, scale, fused)
        upsampler_halo = sum(layer.padding[0] for layer in self.upsamplers[f'x{scale}']
                             if isinstance(layer, nn.Conv2d))
        irb_halo = sum(conv.padding[0] for conv in (*self.refinement_convs, self.to_rgb))
        halo = upsampler_halo + math.ceil(irb_halo / scale)
        strips = []
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            start, stop = max(0, top - halo), min(height, bottom + halo)
            out = self._reconstruct_rows(h[:, :, start:stop], scale, fused)
            strips.append(out[:, :, (top - start) * scale:(bottom - start) * scale])
        return torch.cat(strips, dim=2)
