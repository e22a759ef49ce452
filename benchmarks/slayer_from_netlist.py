"""Build a lava-dl SLAYER model (``lava.lib.dl.slayer.block.cuba``) from a neurosim netlist.

lava-dl's own ``slayer.auto.SequentialNetwork`` cannot rebuild these netlists (conv nets,
biases, readouts without a neuron group, the ``pool`` layer), so this module maps every
layer of a :class:`neurosim.netlist.schema.Netlist` to a SLAYER CUBA block and loads the
netlist's weights into it. It exists to time SLAYER's batched forward on exactly the nets
neurosim runs (``benchmarks/bench_simulators.py``); spike-for-spike agreement with netx/Lava
is *not* a goal (SLAYER's first block has no input delay, SLAYER spikes on ``v >= vth + eps``
in scaled float units, and RMP has no SLAYER neuron).

Scaling (read off ``slayer/neuron/cuba.py`` and ``slayer/block/base.py``): a SLAYER CUBA
neuron with the default ``scale = 1 << 6`` works in units of ``1/64`` mantissa:

* ``threshold = vThMant / 64``, ``current_decay = iDecay / 4096``, ``voltage_decay = vDecay / 4096``
  (the inverse of ``slayer.neuron.cuba.neuron_params`` / ``device_params``);
* synaptic weights ``w_slayer = w_mantissa / 64``: the block's ``pre_hook_fx``
  (``neuron.quantize_8bit``) quantizes weights to steps of ``2/64`` in ``[-256/64, 254/64]`` and
  SLAYER's export writes ``pre_hook_fx(w, descale=True) = 64 * w``. That hook is kept when it
  is lossless for the netlist (all weights even integers in [-256, 254]); otherwise the block
  gets ``pre_hook_fx=None`` and uses the exact weights;
* the neuron state is integrated in integers of ``s_scale = 64 * 64`` (``leaky_integrator``),
  i.e. the same 2**-6-mantissa state units as Lava's fixed-point LIF.

Only chains are mapped (a SLAYER model here is a sequence of blocks): :func:`check_chain`
refuses a population with more than one projection (a join), a projection or flatten whose
source is not the layer just before, a per-step schedule (SLAYER's blocks have no per-step
scale or bias) and a soft-reset ``CUBA`` neuron (SLAYER's CUBA resets hard).

Mapping per layer type (a population by the synapse kind of its one projection):

* ``input``  -> ``block.cuba.Input`` (its neuron integrates the input current; the block's
  ``pre_hook_fx`` is replaced by the identity so the current is not quantized). The model takes
  the current ``weight * x + bias`` in mantissas, divided by 64, repeated over T
  (:func:`slayer_input`).
* ``dense``  -> ``block.cuba.Dense`` (input flattened in (C, H, W) order, as the netlist does);
* ``conv``   -> ``block.cuba.Conv`` (same cross-correlation weight layout (out, in, kh, kw) + a
  trailing time axis of 1);
* ``pool``   -> ``block.cuba.Pool`` with the netlist's (kh, kw) kernel loaded into its weight;
* ``flatten``-> ``block.cuba.Flatten``;
* ``identity`` (and any other kind) has no SLAYER block: refused.
* Neuron biases (netx ``bias_mant``, added to v every step) have no SLAYER block argument; they
  are added to the neuron's current through SLAYER's ``norm`` hook (applied after the current
  dynamics, before the voltage integration), i.e. ``v += bias`` every step, as in Lava.
* ``RMP`` neurons (soft reset, no current state) have no SLAYER equivalent: they become CUBA
  neurons with ``current_decay = 1`` (no current memory) and ``voltage_decay = vDecay/4096``
  (0 for the RMP IF neuron) -- same cost, hard instead of soft reset. This is a *timing proxy*.

Tensors are SLAYER's ``NCT`` / ``NCHWT`` (time last). Use it as::

    model = SlayerNet(net)
    with torch.no_grad():
        out = model(slayer_input(net, x, steps, raw_current=True))   # (N, *out_shape, T)
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import neurosim  # noqa: F401  (before torch: neurosim.threads)
import numpy as np
import torch

from lava.lib.dl import slayer
from neurosim.netlist.schema import DECAY_UNITY, Flatten, Input, Netlist, Population
from neurosim.netlist.neurons import CUBA, RMP, Neuron
from neurosim.netlist.synapses import Conv, Dense, Pool

#: SLAYER CUBA neuron scale: state and weights in units of 1/64 mantissa.
SCALE = 1 << 6


class ChannelBias(torch.nn.Module):
    """SLAYER ``norm`` hook adding a constant per-neuron (dense) or per-channel (conv) bias.

    SLAYER applies ``norm`` to the neuron current before the voltage integration, so the
    bias enters ``v`` every step (netx ``bias_mant``). ``bias`` is in SLAYER units (mantissa / 64).
    """

    def __init__(self, bias: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("bias", torch.as_tensor(np.asarray(bias, dtype=np.float32)))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (current.dim() - 2)
        return current + self.bias.reshape(shape)


def neuron_params(neuron: Neuron, bias: Optional[np.ndarray] = None) -> dict:
    """SLAYER CUBA ``neuron_params`` for a netlist neuron (RMP: the CUBA timing proxy)."""
    if isinstance(neuron, RMP):
        i_decay, v_decay = DECAY_UNITY, neuron.vDecay
    elif isinstance(neuron, CUBA):
        i_decay, v_decay = neuron.iDecay, neuron.vDecay
    else:
        raise TypeError(f"unknown neuron {neuron!r}")
    params = {
        "threshold": float(neuron.vThMant) / SCALE,
        "current_decay": i_decay / DECAY_UNITY,
        "voltage_decay": v_decay / DECAY_UNITY,
        "scale": SCALE,
    }
    if bias is not None and np.any(bias):
        params["norm"] = functools.partial(ChannelBias, np.asarray(bias, dtype=np.float64) / SCALE)
    return params


def check_chain(net: Netlist) -> None:
    """Refuse (``ValueError``, naming the layer) what a chain of SLAYER CUBA blocks cannot
    express: more than one projection into a population, a source other than the layer just
    before, a per-step schedule, a soft-reset CUBA neuron."""
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Input):
            neuron, sources = layer.neuron, []
        elif isinstance(layer, Flatten):
            neuron, sources = None, [layer.source]
        elif isinstance(layer, Population):
            if len(layer.projections) != 1:
                raise ValueError(f"layer {i}: {len(layer.projections)} projections; SLAYER blocks form a "
                                 "chain and take one input each (joins of residual nets are not mapped)")
            if layer.schedule is not None:
                raise ValueError(f"layer {i}: a per-step schedule (scale/bias per step) has no SLAYER "
                                 "block equivalent")
            neuron, sources = layer.neuron, [layer.projections[0].source]
        else:
            raise TypeError(f"layer {i}: {type(layer).__name__} has no SLAYER block here")
        for src in sources:
            if net.source_of(i, src) != i - 1:
                raise ValueError(f"layer {i}: source {net.source_of(i, src)} is not the layer before "
                                 f"({i - 1}); SLAYER blocks form a chain")
        if isinstance(neuron, CUBA) and neuron.soft:
            raise ValueError(f"layer {i}: CUBA with reset='soft' cannot be expressed by SLAYER's CUBA "
                             "neuron (it resets hard)")


def _lossless_8bit(weights: Sequence[np.ndarray]) -> bool:
    """True when SLAYER's ``quantize_8bit`` hook leaves every weight unchanged."""
    for w in weights:
        w = np.asarray(w, dtype=np.float64)
        if not (np.all(w % 2 == 0) and w.min() >= -256 and w.max() <= 254):
            return False
    return True


class SlayerNet(torch.nn.Module):
    """A netlist as a chain of SLAYER CUBA blocks (see the module docstring).

    ``quantize``: ``"auto"`` keeps SLAYER's default 8-bit weight hook when it is lossless,
    ``True`` always keeps it, ``False`` never (exact weights).
    ``forward(x, return_all=False)`` returns the last layer's spikes, or the list of every
    layer's output (``None`` entries for nothing) with ``return_all``.
    """

    def __init__(self, net: Netlist, quantize="auto", delay_shift: bool = True) -> None:
        super().__init__()
        check_chain(net)
        self.net = net
        weights = [l.synapse.weight for l in net.layers
                   if isinstance(l, Population) and isinstance(l.synapse, (Dense, Conv, Pool))]
        self.quantized = _lossless_8bit(weights) if quantize == "auto" else bool(quantize)
        hook = {} if self.quantized else {"pre_hook_fx": None}
        self.proxy_rmp = any(isinstance(getattr(l, "neuron", None), RMP) for l in net.layers)
        blocks = []
        self.flatten_before: list[bool] = []    # dense after a 3-D layer without a flatten layer
        for i, layer in enumerate(net.layers):
            in_shape = net.in_shape(i) if not isinstance(layer, Input) else tuple(layer.shape)
            flat_in = False
            if isinstance(layer, Input):
                block = slayer.block.cuba.Input(neuron_params(layer.neuron), delay_shift=delay_shift)
                block.pre_hook_fx = lambda x: x     # the input current is fed exactly
            elif isinstance(layer, Flatten):
                block = slayer.block.cuba.Flatten()
            elif isinstance(layer.synapse, Dense):
                syn = layer.synapse
                n_out, n_in = syn.weight.shape
                flat_in = len(in_shape) > 1
                block = slayer.block.cuba.Dense(
                    neuron_params(layer.neuron, layer.bias), n_in, n_out,
                    delay_shift=delay_shift, **hook)
                block.synapse.weight.data = torch.as_tensor(
                    np.asarray(syn.weight, dtype=np.float32) / SCALE).reshape(n_out, n_in, 1, 1, 1)
            elif isinstance(layer.synapse, Conv):
                syn = layer.synapse
                out_c, in_per_group, kh, kw = syn.weight.shape
                bias = None if layer.bias is None else np.asarray(layer.bias)
                block = slayer.block.cuba.Conv(
                    neuron_params(layer.neuron, bias), in_per_group * syn.groups, out_c, (kh, kw),
                    stride=tuple(syn.stride), padding=tuple(syn.padding),
                    dilation=tuple(syn.dilation), groups=syn.groups,
                    delay_shift=delay_shift, **hook)
                block.synapse.weight.data = torch.as_tensor(
                    np.asarray(syn.weight, dtype=np.float32) / SCALE).reshape(out_c, in_per_group, kh, kw, 1)
            elif isinstance(layer.synapse, Pool):
                syn = layer.synapse
                if layer.bias is not None and np.any(layer.bias):
                    raise ValueError(f"layer {i}: a bias on a pool layer is not mapped (SLAYER's Pool block)")
                kh, kw = syn.kernel_size
                block = slayer.block.cuba.Pool(
                    neuron_params(layer.neuron), (kh, kw), stride=tuple(syn.stride),
                    padding=tuple(syn.padding), delay_shift=delay_shift, **hook)
                block.synapse.weight.data = torch.as_tensor(
                    np.asarray(syn.weight, dtype=np.float32) / SCALE).reshape(1, 1, kh, kw, 1)
                if (in_shape[1] % kh or in_shape[2] % kw) and tuple(syn.padding) != (0, 0):
                    raise ValueError(f"layer {i}: SLAYER's pool pads odd inputs itself; padded pooling "
                                     "of an odd input is not mapped")
            else:
                raise TypeError(f"layer {i}: the '{layer.type_name}' synapse has no SLAYER block here")
            blocks.append(block)
            self.flatten_before.append(flat_in)
        self.blocks = torch.nn.ModuleList(blocks)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor, return_all: bool = False):
        outs = []
        for block, layer, flat in zip(self.blocks, self.net.layers, self.flatten_before):
            if flat:
                x = x.reshape(x.shape[0], -1, x.shape[-1])
            x = block(x)
            if isinstance(layer, Flatten):
                x = x.reshape(x.shape[0], -1, x.shape[-1])
            outs.append(x if return_all and not isinstance(layer, Flatten) else None)
        return outs if return_all else x


def slayer_input(net: Netlist, x: np.ndarray, steps: int, raw_current: bool = True) -> torch.Tensor:
    """The SLAYER input tensor for the same ``x`` that ``Simulator.run(x, steps, raw_current)`` takes.

    Nets with an ``input`` layer: ``x`` (N, *shape) is the current in mantissas (or, with
    ``raw_current=False``, the sample, transformed by the layer's ``weight * x + bias``); the
    result is ``current / 64`` repeated over T, shape (N, *shape, T). Nets without one: spikes
    ``x`` (N, T, *in_shape) become (N, *in_shape, T).
    """
    x = np.asarray(x)
    if net.has_input_layer:
        layer = net.layers[0]
        current = x if raw_current else layer.current(x, fixed=True)
        current = torch.as_tensor(np.asarray(current, dtype=np.float32) / SCALE)
        current = current.reshape(len(x), *layer.shape)
        return current.unsqueeze(-1).repeat(*([1] * current.dim()), steps)
    spikes = torch.as_tensor(np.asarray(x, dtype=np.float32))
    return spikes.movedim(1, -1).contiguous()


def output_shape(net: Netlist, n: int, steps: int) -> tuple[int, ...]:
    """The shape SlayerNet's output must have: (N, *last layer shape, T)."""
    return (n, *net.layers[-1].shape, steps)
