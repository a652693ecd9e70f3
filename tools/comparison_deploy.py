"""The networks of docs/comparison.md as they are deployed: re-parameterised, and on one channel where
the authors deploy on Y.

Some networks train with parallel branches that are folded into one convolution for inference
(structural re-parameterisation). Their papers count the folded network; the code builds both, and
spandrel and BasicSR fold again at every eval forward pass instead of keeping the folded network.
``deploy`` returns a copy in which every such block is the single convolution it folds into, so that
parameters and MACs are those of the network that runs:

* spandrel's SPAN ``Conv3XC``: a 1x1 -> 3x3 -> 1x1 chain beside a 1x1 shortcut. Its training forward
  pads the input with zeros *before* the first 1x1 convolution, so the padded border carries that
  convolution's bias in both forms and the fold is exact; ``Conv3XC.update_params`` computes it.
* BasicSR's ``ECB`` (ECBSR): a 3x3 convolution beside 1x1 -> 3x3, 1x1 -> Sobel x/y and 1x1 -> Laplacian
  branches, which pad with the 1x1 bias for the same reason; ``ECB.rep_params`` computes the fold.

Blocks are recognised by class name, so this module imports neither framework.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F


class FoldedConv(nn.Module):
    """One 3x3 convolution (the folded branches) and the block's activation."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, activation: nn.Module):
        super().__init__()
        out_channels, in_channels, height, width = weight.shape
        self.conv = nn.Conv2d(in_channels, out_channels, (height, width), padding=(height // 2, width // 2))
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            self.conv.bias.copy_(bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x))


class LeakyReLU005(nn.Module):
    """The leaky ReLU (slope 0.05) a SPAN ``Conv3XC`` built with ``relu=True`` applies after its convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, negative_slope=0.05)


def _fold_conv3xc(block: nn.Module) -> FoldedConv:
    with torch.no_grad():
        block.update_params()
    activation = LeakyReLU005() if block.has_relu else nn.Identity()
    return FoldedConv(block.eval_conv.weight.detach(), block.eval_conv.bias.detach(), activation)


def _fold_ecb(block: nn.Module) -> FoldedConv:
    with torch.no_grad():
        weight, bias = block.rep_params()
    activation = nn.Identity() if block.act_type == 'linear' else block.act
    return FoldedConv(weight.detach(), bias.detach(), activation)


#: Class name of a re-parameterisable block -> the function that returns its folded form.
FOLDS = {'Conv3XC': _fold_conv3xc, 'ECB': _fold_ecb}


def deploy(network: nn.Module) -> tuple[nn.Module, int]:
    """(a copy of ``network`` with every re-parameterisable block folded, in eval mode; blocks folded)."""
    deployed = copy.deepcopy(network).eval()
    folded = 0
    for name, module in list(deployed.named_modules()):
        fold = FOLDS.get(type(module).__name__)
        if fold is None or not name:
            continue
        parent_name, _, child = name.rpartition('.')
        setattr(deployed.get_submodule(parent_name), child, fold(module))
        folded += 1
    return deployed, folded


class LumaInput(nn.Module):
    """A one-channel (Y) network given the RGB calling contract: it runs on the first channel of the input,
    which stands for Y (slicing is free: the counts are those of the Y network)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x[:, :1])
