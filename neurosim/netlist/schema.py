"""The neurosim netlist (v2): the one definition every executor implements.

A netlist is a list of layers in topological order. A *population* layer owns neurons and
receives one or more *projections*; each projection takes the spikes of one earlier layer
(its ``source``; by default the layer just before) through one synapse kind (dense, conv,
pool, identity: :mod:`neurosim.netlist.synapses`, one module each). The currents of all
projections add before the neuron. The chain of lava-dl's *netx* layout is the special case
where every layer has one projection from the layer before; ``docs/netlist.md`` is the prose
version of this module, with the HDF5 keys.

Time and delays (identical to Lava: every projection is a synapse process that sends the sum
it computed in the previous step; a projection with ``delay`` ``d > 1`` holds the spikes
``d - 1`` more steps in an axonal delay line before its synapse)::

    a_l[t] = sum over projections p of l:  synapse_p(s_{source(p)}[t - d_p])   (s[t] = 0 for t < 0)

``d_p >= 1`` (default 1: Lava's and netx's one step per projection). A join adds what each
path delivers *at that step*: with every ``d = 1`` a skip path with fewer synaptic hops arrives
earlier than the main path; :func:`neurosim.netlist.transforms.align_delays` sets the delays
so that every path into a join arrives together.

Per-step schedule (optional, per population; BNTT folded into a scale and a bias per step
and channel ``c``; step ``t`` counts from 0 at the start of a sample; after the last stored
step the last row holds)::

    a'[t, c] = scale[t, c] * a[t, c]          b'[t, c] = b[c] + bias[t, c]

In ``fixed`` mode ``scale`` holds integer mantissas with one exponent ``scaleExp`` (>= 0)
per population, and the product is rounded half up: ``(a * scale + 2**(e-1)) >> e``
(:func:`neurosim.dynamics.lif.scale_fixed`); in ``float`` mode ``a * scale * 2**-e``.

Units: weights, biases and thresholds are *mantissas* (integers for the ``fixed`` mode). The
``float`` mode works in mantissa units; the ``fixed`` mode (Lava ``fixed_pt``, Loihi) keeps
state in units of ``2**-6`` mantissa (every current, bias and threshold ``<< 6``).

Neuron equations (``float`` mode; ``fixed`` mode in :mod:`neurosim.dynamics.lif`), from
``u = 0`` and ``v = vInit`` at the start of every sample::

    u[t] = (1 - iDecay/4096) * u[t-1] + a'[t]          (RMP: iDecay = 4096, u = a')
    v[t] = (1 - vDecay/4096) * v[t-1] + u[t] + b'[t]
    s[t] = v[t] > vThMant
    reset 'hard': v[t] = 0 where s[t]        reset 'soft': v[t] = v[t] - vThMant where s[t]

The neuron kinds are :mod:`neurosim.netlist.neurons` (one module each, with its parameters):
``CUBA`` (netx, Lava ``LIF``) resets hard by default, ``RMP`` (residual membrane potential,
Han et al. 2020) softly; either takes the other reset as a parameter. Both are this step.

Input: either an ``Input`` layer (layer 0) driven by the sample as a constant current
``b = weight * x + bias`` per neuron (SLAYER's ``Input`` transform, rounded to an integer in
``fixed`` mode) or, for an *analog* input layer, ``b = weight * synapse(x) + bias[c]`` with a
conv or dense synapse the host computes once per sample (:mod:`neurosim.netlist.host`; the
image enters as the first population's current, as in the RMP and QCFS papers), or, without
an input layer, a 0/1 spike raster of shape ``(T, *input_shape)`` that
reaches its projections like a layer's spikes (source ``INPUT = -1``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from neurosim.errors import NeurosimError

if TYPE_CHECKING:
    from neurosim.netlist.neurons import Neuron
    from neurosim.netlist.synapses.base import SynapseKind

#: Fixed-point constants of Lava's bit-accurate LIF models (Loihi).
DECAY_BITS = 12            # decays are 12-bit fractions of 4096
DECAY_UNITY = 1 << DECAY_BITS
STATE_SHIFT = 6            # a_in, bias (netx bias_exp) and vth are << 6
STATE_BITS = 24            # u and v are 24-bit signed
VTH_MAX = (1 << 17) - 1    # vThMant is unsigned 17-bit
V_INIT_MAX = VTH_MAX       # |vInit|: vInit << 6 stays inside the 24-bit voltage
BIAS_MANT_BITS = 13        # bias mantissa is signed 13-bit
#: Largest schedule exponent: ``scale`` mantissas are fractions of ``2**scaleExp``.
SCALE_EXP_MAX = 24

#: Limits of a netlist (the rules of :mod:`neurosim.netlist.validate`; a file asks for no more):
#: neurons per layer, values per array (a layer's synapses), layers (and projections per layer),
#: values in all arrays of a net together.
MAX_NEURONS = 1 << 24
MAX_SYNAPSES = 1 << 28
MAX_LAYERS = 1 << 12
MAX_TOTAL_VALUES = MAX_SYNAPSES
#: |weight|, |bias|, |schedule| and the input layer's weight and bias: the largest float32 that fits
#: int32 (netx casts weights and biases to int), 2**31 - 128, so a float64 within it stays within it
#: when written as float32.
MAX_ABS_VALUE = float(np.float32((1 << 31) - 128))
#: Largest CUBA ``refDelay`` (stored for netx, not applied).
REF_DELAY_MAX = 1 << 16
#: Longest layer or synapse type name (ASCII) and metadata (JSON bytes).
MAX_NAME_BYTES = 64
MAX_META_BYTES = 1 << 20
#: Upper bound on time steps per sample (netlist metadata 'timesteps', the command line's --steps):
#: far beyond RMP-SNN's 512 and BNTT's 25; a typo is an error, not hours of simulation.
MAX_TIMESTEPS = 1 << 16
#: The ``source`` of a projection that takes the net's spike input (nets without ``Input``).
INPUT = -1
RESETS = ("hard", "soft")

Shape = tuple[int, ...]


@dataclass
class Input:
    """Input neurons driven by the sample with a constant current (per neuron, every step)::

        b = weight * x + bias                       (no synapse: one neuron per value of x)
        b[c, ...] = weight * synapse(x)[c, ...] + bias[c]     (an analog input layer)

    ``shape`` is the neurons' (C, H, W) or (N,); only layer 0 may be an input layer. Without a
    ``synapse`` the sample ``x`` has ``shape`` and ``bias`` is one number. With one (a conv or
    dense kind, computed by the host: :mod:`neurosim.netlist.host`) the sample has
    ``sample_shape``, the synapse maps it to ``shape``, and ``bias`` is one number or one per
    channel (C,). The ``fixed`` mode rounds ``b`` to an integer.
    """
    shape: Shape
    neuron: Neuron
    weight: float = 1.0
    bias: Union[float, np.ndarray] = 0.0
    synapse: Optional["SynapseKind"] = None
    sample_shape: Optional[Shape] = None

    type_name = "input"

    @property
    def samples(self) -> Shape:
        """The shape of one sample ``x``."""
        return tuple(self.shape if self.synapse is None else self.sample_shape)

    def current(self, x: np.ndarray, fixed: bool) -> np.ndarray:
        """Bias current (mantissa units) for a batch ``x`` of shape (N, *samples): (N, *shape)."""
        x = np.asarray(x, dtype=np.float64)
        bias = np.asarray(self.bias, dtype=np.float64)
        if self.synapse is not None:
            from neurosim.netlist.host import HOST

            x = HOST.of(self.synapse)(self.synapse, x).reshape(len(x), *self.shape)
            bias = bias.reshape(-1, *([1] * (len(self.shape) - 1))) if bias.ndim else bias
        b = self.weight * x + bias
        return np.rint(b) if fixed else b


@dataclass
class Flatten:
    """Reshape of the source's spikes (C, H, W) to (C*H*W,) in C-order; no neurons, no delay."""
    shape: Shape
    source: Optional[int] = None

    type_name = "flatten"


#: Largest ``delay`` of a projection (steps): far beyond Loihi 2's 63 (netx clamps delays to 62
#: after the synapse's own step); a typo is an error, not a huge delay buffer.
MAX_DELAY = 1 << 10


@dataclass
class Projection:
    """Spikes of layer ``source`` (``None``: the layer before; ``INPUT``: the net's spike input)
    through one synapse into a population, ``delay`` steps after they left the source
    (``1 <= delay <= MAX_DELAY``; 1: the synapse's own step, as in Lava and netx)."""
    synapse: "SynapseKind"
    source: Optional[int] = None
    delay: int = 1


@dataclass
class Schedule:
    """Per-step scale and bias of a population's synaptic current, per channel.

    ``scale`` and ``bias`` are (T_s, C) arrays (either may be ``None``: 1 and 0), ``C`` the
    channel count (``shape[0]``; the neuron count for (N,) shapes). Step ``t >= T_s`` uses row
    ``T_s - 1``. ``scale_exp``: ``scale`` holds mantissas of ``2**-scale_exp`` (fixed mode
    rounds the scaled current half up, see the module docstring); without ``scale`` the
    current is not scaled at all and ``scale_exp`` is unused.
    """
    scale: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    scale_exp: int = 0

    @property
    def steps(self) -> int:
        return max(len(a) for a in (self.scale, self.bias) if a is not None)

    def rows(self, t0: int, w: int, which: str) -> Optional[np.ndarray]:
        """Rows of ``scale`` or ``bias`` for steps ``t0 .. t0+w-1`` (last row held), (w, C)."""
        a = getattr(self, which)
        if a is None:
            return None
        return a[np.minimum(np.arange(t0, t0 + w), len(a) - 1)]


@dataclass
class Population:
    """Neurons (``shape`` (C, H, W) or (N,)) driven by the sum of their ``projections``.

    ``bias`` (C,) is a constant neuron bias per channel (per neuron for (N,) shapes),
    ``schedule`` an optional per-step scale and bias. Its ``type`` in a file is the kind of
    its first projection (``dense``, ``conv``, ``pool``, ``identity``).
    """
    shape: Shape
    neuron: Neuron
    projections: list[Projection]
    bias: Optional[np.ndarray] = None
    schedule: Optional[Schedule] = None

    @property
    def type_name(self) -> str:
        return self.projections[0].synapse.type_name

    @property
    def channels(self) -> int:
        return int(self.shape[0])

    @property
    def synapse(self) -> "SynapseKind":
        """The first projection's synapse (the only one of a chain layer)."""
        return self.projections[0].synapse


Layer = Union[Input, Population, Flatten]


def conv_output_hw(in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Spatial output size of a convolution or pooling window (PyTorch formula)."""
    return tuple(
        (in_hw[i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i in range(2)
    )


@dataclass
class Netlist:
    """Layers in topological order (every source precedes its target).

    ``input_shape`` is the shape of the spike input when the net has no ``Input`` layer
    (it is ``None`` otherwise).
    """
    layers: list[Layer]
    input_shape: Optional[Shape] = None
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ graph

    def source_of(self, i: int, source: Optional[int]) -> int:
        """The explicit source index of a projection (or flatten) of layer ``i``."""
        if source is None:
            return i - 1 if i > 0 else INPUT
        return int(source)

    def depths(self) -> list[int]:
        """Each layer's *depth*: the first step at which anything can reach it. The spike input
        and an ``Input`` layer have depth 0; a population ``min`` over its projections of the
        source's depth plus the projection's ``delay``; a ``Flatten`` that of its source."""
        d: list[int] = []
        for k, layer in enumerate(self.layers):
            if isinstance(layer, Input):
                d.append(0)
            elif isinstance(layer, Flatten):
                src = self.source_of(k, layer.source)
                d.append(0 if src == INPUT else d[src])
            else:
                d.append(min((0 if s == INPUT else d[s]) + int(p.delay)
                             for s, p in ((self.source_of(k, p.source), p) for p in layer.projections)))
        return d

    def distances(self) -> list[Optional[int]]:
        """Each neuron layer's *distance*: the fewest steps after which its spikes can reach
        the output layer. The output layer has distance 0; a layer the ``min`` over the
        projections that read it of the projection's ``delay`` plus the reader's distance;
        ``None`` for a layer with no path to the output and for ``Flatten`` layers (their
        source carries it). A spike of a layer at distance ``d`` emitted at step ``t`` can move
        the output layer from step ``t + d`` on, so in a run of ``T`` steps only its first
        ``T - d`` steps matter to the readout."""
        far: list[Optional[int]] = [None] * len(self.layers)
        far[self.output_layer] = 0
        for k in range(len(self.layers) - 1, -1, -1):      # readers come after their sources
            layer = self.layers[k]
            if not isinstance(layer, Population) or far[k] is None:
                continue
            for p in layer.projections:
                src = self.resolve(self.source_of(k, p.source))
                if src != INPUT:
                    via = far[k] + int(p.delay)
                    far[src] = via if far[src] is None else min(far[src], via)
        return far

    def resolve(self, src: int) -> int:
        """The neuron layer (or ``INPUT``) whose spikes a source stands for: flatten layers
        are followed to their own source."""
        while src != INPUT and isinstance(self.layers[src], Flatten):
            src = self.source_of(src, self.layers[src].source)
        return src

    def shape_of(self, src: int) -> Shape:
        """Shape of the spikes of layer ``src`` (or of the input)."""
        if src == INPUT:
            if self.input_shape is None:
                raise NeurosimError("netlist without an input layer needs input_shape")
            return tuple(self.input_shape)
        return tuple(self.layers[src].shape)

    def inputs(self, i: int) -> list[tuple[int, "SynapseKind"]]:
        """``(source index, synapse)`` of every projection of population ``i``."""
        return [(self.source_of(i, p.source), p.synapse) for p in self.layers[i].projections]

    def in_shape(self, i: int, p: int = 0) -> Shape:
        """Shape of the spikes entering projection ``p`` of layer ``i`` (flatten: its source)."""
        layer = self.layers[i]
        src = self.source_of(i, layer.source if isinstance(layer, Flatten) else layer.projections[p].source)
        return self.shape_of(src)

    def projections_from(self, j: int) -> list[tuple[int, int]]:
        """``(i, p)`` of every projection whose spikes come from neuron layer ``j`` (or
        ``INPUT``), through flatten layers."""
        return [(i, p) for i, layer in enumerate(self.layers) if isinstance(layer, Population)
                for p, proj in enumerate(layer.projections)
                if self.resolve(self.source_of(i, proj.source)) == j]

    def check(self) -> None:
        """Refuse a netlist that breaks a rule of the schema (sources that are not earlier layers,
        shape mismatches, parameters out of range, ...), naming the layer and key: the ``schema``
        profile of :func:`neurosim.netlist.validate.validate` (not run again for a net that passed)."""
        from neurosim.netlist.validate import validate

        validate(self, "schema")

    # ------------------------------------------------------------------ samples

    @property
    def has_input_layer(self) -> bool:
        return bool(self.layers) and isinstance(self.layers[0], Input)

    @property
    def sample_shape(self) -> Shape:
        """The shape of one sample: an input layer's :attr:`Input.samples` (no time axis), or
        the spike input's ``input_shape`` (per step)."""
        return self.layers[0].samples if self.has_input_layer else tuple(self.input_shape)

    def check_samples(self, x: np.ndarray, steps: int, raw_current: bool = False) -> None:
        """Refuse a batch ``x`` this net cannot take, naming what is wrong: with an input layer
        (N, *sample shape) of finite numbers (``raw_current``: the input neurons' current,
        (N, *input layer shape)); without one, spikes (N, steps, *input_shape) that are all 0
        or 1 (the synapses take binary events)."""
        if steps < 1:
            raise NeurosimError(f"steps must be at least 1, got {steps}")
        if self.has_input_layer:
            layer = self.layers[0]
            expect = tuple(layer.shape) if raw_current else layer.samples
        else:
            expect = (steps, *self.input_shape)
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

    # ------------------------------------------------------------------ neuron layers

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

