"""The family's calling contract, given to any other super-resolution network.

Every network of the family has ``scales``, ``default_scale`` and is called ``net(x)`` or
``net(x, scale=k)``. A network from anywhere else is wrapped once, here, in ``ForeignNetwork``, which
gives it the same three things, so that counting and timing code calls every network the same way and
never inspects a model to learn how to call it. Its upscaling factor is read from one forward pass of
a 32x32 input on the ``meta`` device (no computation), or taken from ``scale`` when given (and checked
against that pass). ``networks`` resolves a spec to a network and hands it to ``follow_contract``.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .archs import spec_of
from .errors import ConfigError

#: Side of the square input of the forward pass that reads a foreign network's scale.
_PROBE_SIZE = 32


class ForeignNetwork(nn.Module):
    """A network from outside the family, given the family's calling contract.

    Attributes:
        network: The wrapped network, called as ``network(x)``.
        scales: ``(scale,)``: the one upscaling factor it has.
        default_scale: ``scale``.
    """

    def __init__(self, network: nn.Module, scale: int):
        super().__init__()
        self.network = network
        self.scales = (scale,)
        self.default_scale = scale

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        if scale is not None and scale != self.default_scale:
            raise ConfigError(f'{type(self.network).__name__} upscales x{self.default_scale} only, not x{scale}')
        return self.network(x)


def probe_scale(network: nn.Module) -> int | None:
    """The upscaling factor of ``network(x)``, read from one forward pass of a 1x3x32x32 input.

    The pass runs on a copy on the ``meta`` device (shapes only); a network that cannot run there
    runs once on the CPU instead. ``None`` when neither pass works or the output is not an integer
    multiple of the input in both directions.
    """
    for device in ('meta', 'cpu'):
        runner = copy.deepcopy(network).to(device).eval()
        try:
            with torch.no_grad():
                output = runner(torch.zeros(1, 3, _PROBE_SIZE, _PROBE_SIZE, device=device))
        except Exception:  # noqa: BLE001  (any failure of a foreign forward pass means: try the next device)
            continue
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            return None
        height, width = output.shape[-2:]
        if height % _PROBE_SIZE == 0 and height == width:
            return height // _PROBE_SIZE
        return None
    return None


def follow_contract(network: nn.Module, name: str, scale: int | None = None) -> tuple[nn.Module, int]:
    """(network with the calling contract, in eval mode; its ``default_scale``). Family networks pass
    through; any other is wrapped in ``ForeignNetwork``.

    Args:
        network: Any network (put in eval mode).
        name: For error messages.
        scale: Checked against the network's scale; for a foreign network whose forward pass cannot
            be probed, taken as its scale.
    """
    network = network.eval()
    if spec_of(network) is not None:
        if scale not in (None, network.default_scale):
            raise ConfigError(f'{name} runs x{network.default_scale} by default, not x{scale}')
        return network, network.default_scale
    probed = probe_scale(network)
    if probed is None and scale is None:
        raise ConfigError(f'{name}: could not read the upscaling factor from a forward pass of a 1x3x'
                          f'{_PROBE_SIZE}x{_PROBE_SIZE} input; give it (--scale)')
    if probed is not None and scale is not None and probed != scale:
        raise ConfigError(f'{name} upscales x{probed}, not x{scale} (--scale); build it for x{scale} '
                          'through its own arguments (--arch-args)')
    scale = probed if probed is not None else scale
    return ForeignNetwork(network, scale), scale


__all__ = ['ForeignNetwork', 'follow_contract', 'probe_scale']
