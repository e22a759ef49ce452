"""The neurosim netlist: the one definition every executor implements.

A netlist is an ordered list of layers. Each layer owns a *synapse* (how it
receives the previous layer's spikes) and, except ``Flatten``, a *neuron*
population. The HDF5 layout is lava-dl's *netx* layout (``/layer/<i>/...``),
extended with the ``RMP`` neuron type and the ``pool`` synapse that netx
cannot express. ``docs/netlist.md`` is the prose version of this module.

Time and delays (identical to Lava, one step of latency per synapse)::

    a_l[t] = synapse_l(s_{l-1}[t-1])      (a_l[0] = 0)

The first synaptic layer therefore sees the input layer's spikes one step
late, and layer ``l`` of a chain first responds at step ``l``.

Units: weights, biases and thresholds are *mantissas* (integers for the
``fixed`` mode). The ``float`` mode works in mantissa units; the ``fixed``
mode (Lava ``fixed_pt``, Loihi) keeps state in units of ``2**-6`` mantissa,
i.e. every current, bias and threshold is shifted left by 6 bits.

Neuron equations (``float`` mode; ``fixed`` mode in :mod:`neurosim.dynamics`):

``CUBA`` (netx, Lava ``LIF``; hard reset)::

    u[t] = (1 - iDecay/4096) * u[t-1] + a[t]
    v[t] = (1 - vDecay/4096) * v[t-1] + u[t] + b
    s[t] = v[t] > vThMant ;  v[t] = 0 where s[t]

``RMP`` (residual membrane potential, soft reset; neurosim extension)::

    v[t] = (1 - vDecay/4096) * v[t-1] + a[t] + b
    s[t] = v[t] > vThMant ;  v[t] = v[t] - vThMant where s[t]

The input of a net enters through its ``Input`` layer as a constant current:
``b = weight * x + bias`` per neuron (the SLAYER ``Input`` block transform),
rounded to an integer in ``fixed`` mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from neurosim.errors import NeurosimError

#: Fixed-point constants of Lava's bit-accurate LIF models (Loihi).
DECAY_BITS = 12            # decays are 12-bit fractions of 4096
DECAY_UNITY = 1 << DECAY_BITS
STATE_SHIFT = 6            # a_in, bias (netx bias_exp) and vth are << 6
STATE_BITS = 24            # u and v are 24-bit signed
VTH_MAX = (1 << 17) - 1    # vThMant is unsigned 17-bit
BIAS_MANT_BITS = 13        # bias mantissa is signed 13-bit

#: Upper bound on neurons per layer and synapses per layer accepted from a file.
MAX_NEURONS = 1 << 24
MAX_SYNAPSES = 1 << 28
#: Upper bound on time steps per sample (netlist metadata 'timesteps', the command line's --steps):
#: far beyond RMP-SNN's 512 and BNTT's 25; a typo is an error, not hours of simulation.
MAX_TIMESTEPS = 1 << 16

Shape = tuple[int, ...]


@dataclass(frozen=True)
class CUBA:
    """Current-based LIF with hard reset (netx ``CUBA``; ``LOIHI`` is read as CUBA).

    ``u[t] = (1 - iDecay/4096) u[t-1] + a[t]``;
    ``v[t] = (1 - vDecay/4096) v[t-1] + u[t] + b``; spike if ``v > vThMant``; then ``v = 0``.
    ``refDelay`` is stored for netx but not applied (Lava's LIF has no refractory period).
    """
    vThMant: int
    iDecay: int = DECAY_UNITY
    vDecay: int = 0
    refDelay: int = 1

    type_name = "CUBA"


@dataclass(frozen=True)
class RMP:
    """Residual-membrane-potential neuron: (leaky) integrate-and-fire with soft reset.

    ``v[t] = (1 - vDecay/4096) v[t-1] + a[t] + b``; spike if ``v > vThMant``;
    then ``v = v - vThMant`` (the residual is kept). ``vDecay = 0`` is the RMP-SNN IF neuron.
    """
    vThMant: int
    vDecay: int = 0

    type_name = "RMP"


Neuron = Union[CUBA, RMP]

#: What netx builds for a ``dense`` layer stored without a ``neuron`` group: a non-leaky
#: current integrator (``iDecay = 0``, ``vDecay = 4096``: ``v = u``) with a threshold of 2**17
#: (netx writes ``1 << 18 - 1``), i.e. a readout that practically never spikes.
NETX_DENSE_WITHOUT_NEURON = CUBA(vThMant=1 << 17, iDecay=0, vDecay=DECAY_UNITY)
NEURON_TYPES: dict[str, type] = {"CUBA": CUBA, "LOIHI": CUBA, "RMP": RMP}


@dataclass
class Input:
    """Input neurons driven by the sample: ``b = weight * x + bias`` (per neuron, constant in time).

    ``shape`` is (C, H, W) or (N,). No synapse.
    """
    shape: Shape
    neuron: Neuron
    weight: float = 1.0
    bias: float = 0.0

    type_name = "input"

    def current(self, x: np.ndarray, fixed: bool) -> np.ndarray:
        """Bias current (mantissa units) for a batch ``x`` of shape (N, *shape)."""
        b = self.weight * np.asarray(x, dtype=np.float64) + self.bias
        return np.rint(b) if fixed else b


@dataclass
class Dense:
    """Fully connected synapse: ``a = W s`` with ``weight`` (out, in); ``bias`` (out,) is neuron bias."""
    shape: Shape
    weight: np.ndarray
    neuron: Neuron
    bias: Optional[np.ndarray] = None

    type_name = "dense"


@dataclass
class Conv:
    """2-D convolution (cross-correlation, PyTorch semantics) of (C, H, W) spikes.

    ``weight`` (out, in/groups, kh, kw); ``stride``, ``padding``, ``dilation`` are (y, x);
    ``bias`` (out,) is a per-channel neuron bias.
    """
    shape: Shape
    weight: np.ndarray
    neuron: Neuron
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: Optional[np.ndarray] = None

    type_name = "conv"


@dataclass
class Pool:
    """Sum pooling with one ``weight`` kernel (kh, kw) shared by all channels (SLAYER ``pool``).

    Average pooling is ``weight = 1/(kh*kw)`` scaled with the layer. Channel count is kept.
    """
    shape: Shape
    weight: np.ndarray
    neuron: Neuron
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (0, 0)

    type_name = "pool"

    @property
    def kernel_size(self) -> tuple[int, int]:
        return tuple(int(k) for k in self.weight.shape[-2:])


@dataclass
class Flatten:
    """Reshape (C, H, W) to (C*H*W,) in C-order; no neurons, no delay."""
    shape: Shape

    type_name = "flatten"


Layer = Union[Input, Dense, Conv, Pool, Flatten]
LAYER_TYPES: dict[str, type] = {c.type_name: c for c in (Input, Dense, Conv, Pool, Flatten)}


def conv_output_hw(in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Spatial output size of a convolution or pooling window (PyTorch formula)."""
    return tuple(
        (in_hw[i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i in range(2)
    )


@dataclass
class Netlist:
    """An ordered list of layers; layer ``i`` receives layer ``i-1``'s spikes.

    ``input_shape`` is the shape of the first layer's input when the net has no
    ``Input`` layer (spike input); it is ``None`` otherwise.
    """
    layers: list[Layer]
    input_shape: Optional[Shape] = None
    meta: dict = field(default_factory=dict)

    def in_shape(self, i: int) -> Shape:
        """Shape of the spikes entering layer ``i``."""
        if i == 0:
            if isinstance(self.layers[0], Input):
                return tuple(self.layers[0].shape)
            if self.input_shape is None:
                raise ValueError("netlist without an input layer needs input_shape")
            return tuple(self.input_shape)
        return tuple(self.layers[i - 1].shape)

    @property
    def has_input_layer(self) -> bool:
        return bool(self.layers) and isinstance(self.layers[0], Input)

    def check_samples(self, x: np.ndarray, steps: int) -> None:
        """Refuse a batch ``x`` this net cannot take, naming what is wrong: with an input layer
        (N, *input layer shape) of finite numbers; without one, spikes (N, steps, *input_shape)
        that are all 0 or 1 (the synapses take binary events)."""
        if steps < 1:
            raise NeurosimError(f"steps must be at least 1, got {steps}")
        expect = tuple(self.layers[0].shape) if self.has_input_layer else (steps, *self.input_shape)
        if x.ndim != len(expect) + 1 or tuple(x.shape[1:]) != expect:
            raise NeurosimError(f"input has shape {tuple(x.shape[1:])} per sample, the netlist expects {expect}"
                                + ("" if self.has_input_layer else " (time steps first)"))
        if x.dtype.kind not in "biuf":
            raise NeurosimError(f"input must be numeric, got dtype {x.dtype}")
        if self.has_input_layer:
            if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
                raise NeurosimError("input samples contain NaN or infinite values")
        elif x.dtype.kind != "b" and not np.all((x == 0) | (x == 1)):     # NaN and inf fail too
            raise NeurosimError("spike input must be 0/1 (the synapses take binary spikes)")

    @property
    def neuron_layers(self) -> list[int]:
        """Indices of layers that own neurons (everything but ``Flatten``)."""
        return [i for i, l in enumerate(self.layers) if not isinstance(l, Flatten)]

    @property
    def neuron_types(self) -> set[str]:
        return {self.layers[i].neuron.type_name for i in self.neuron_layers}

    @property
    def output_layer(self) -> int:
        return self.neuron_layers[-1]
