"""Build a Lava process graph from a :class:`~neurosim.netlist.schema.Netlist`.

Per layer (except ``Flatten``) a neuron process and, except for the ``Input`` layer, a synapse
process feeding it:

==========  ==============================================  ==================================
layer       synapse                                         neurons
==========  ==============================================  ==================================
``input``   none (the sample enters through ``bias_mant``)  ``LIF`` (CUBA) / ``RMPNeuron``
(none)      spike input: ``lava.proc.io.source.RingBuffer``  (feeds layer 0's synapse)
``dense``   ``lava.proc.dense.process.Dense``               ``LIF`` (CUBA) / ``RMPNeuron``
``conv``    ``lava.proc.conv.process.Conv``                 ``LIF`` (CUBA) / ``RMPNeuron``
``pool``    ``Conv`` with ``groups = C``, shared kernel     ``LIF`` (CUBA) / ``RMPNeuron``
==========  ==============================================  ==================================

Lava processes are shaped (W, H, C) (or (N,)); the netlist is (C, H, W). Conv weights
(out, in, kh, kw) become netx's ``weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)`` (Lava's
convolution is a true convolution in (out, kW, kH, in) layout), stride/padding/dilation are
reversed to (x, y), and a (C, H, W) layer feeds a dense layer through
``s_out.transpose([2, 1, 0]).flatten()`` as in netx, i.e. in (C, H, W)-flattened order.
Fixed-point dense weights are mapped as netx maps them (lava-dl's ``optimize_weight_bits``:
weights scaled to fill 8 bits, ``weight_exp`` and ``num_weight_bits`` passed to ``Dense``),
as the reference simulator does (``neurosim.sim.synapse.loihi_dense``).

Neuron parameters per mode (as netx for CUBA):

* ``fixed``: ``LIF(vth=vThMant, du=iDecay-1, dv=vDecay, bias_mant=bias, bias_exp=6)``,
  ``RMPNeuron(vth=vThMant, v_decay=vDecay, bias_mant=bias, bias_exp=6)``;
* ``float``: ``LIF(vth=vThMant, du=iDecay/4096, dv=vDecay/4096, bias_mant=bias)``,
  ``RMPNeuron(vth=vThMant, v_decay=vDecay, bias_mant=bias)``.

Every recorded neuron layer's ``s_out`` also feeds a :class:`~neurosim.lava.process.SpikeRecorder`
writing into ``<record_dir>/spikes_<i>.npy``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.conv.process import Conv as LavaConv
from lava.proc.dense.process import Dense as LavaDense
from lava.proc.io.source import RingBuffer as SpikeSource
from lava.proc.lif.process import LIF

from neurosim.errors import NeurosimError
from neurosim.lava.layout import (
    INT8_MAX, TAGS, check_int16, check_netlist, from_lava, from_lava_steps, lava_conv_weight, lava_shape,
    to_lava, to_lava_time,
)
from neurosim.lava.models import (
    PyRMPModelFixed, PyRMPModelFloat, PySpikeRecorderFixed, PySpikeRecorderFloat,
)
from neurosim.lava.process import RMPNeuron, SpikeRecorder
from neurosim.netlist.schema import (
    CUBA, DECAY_UNITY, RMP, STATE_SHIFT, Conv, Dense, Flatten, Input, Netlist, Pool,
)

__all__ = ["LavaGraph", "build_graph", "netx_dense_weights", "ungroup_conv_weight", "RMP_MODELS",
           "check_netlist", "from_lava", "from_lava_steps", "lava_conv_weight", "lava_shape",
           "to_lava", "to_lava_time"]

#: RMPNeuron's ProcessModel per tag. The builder selects it itself (Lava's
#: ``exception_proc_model_map``): Lava's discovery would otherwise execute every module of the
#: ``neurosim`` package once per RMPNeuron process (measured: compile 2.2 s instead of 0.8 s
#: for three RMP layers, growing with the package, with the modules' side effects).
RMP_MODELS = {"fixed_pt": PyRMPModelFixed, "floating_pt": PyRMPModelFloat}
RECORDER_MODELS = {"fixed_pt": PySpikeRecorderFixed, "floating_pt": PySpikeRecorderFloat}
PathLike = Union[str, os.PathLike]


# ----------------------------------------------------------------------------- the graph

class LavaGraph:
    """The processes of one netlist, indexed by layer (``None`` where a layer has none).

    Run it with ``graph.starter.run(condition, run_cfg=graph.run_cfg())``.
    (A plain class, not a dataclass: Lava's ProcessModel discovery may execute the modules of
    this package under bare names, where ``@dataclass`` fails.)
    """

    def __init__(self, net: Netlist, mode: str, steps: int) -> None:
        self.net, self.mode, self.steps = net, mode, int(steps)
        self.neurons: list[Optional[AbstractProcess]] = []
        self.synapses: list[Optional[AbstractProcess]] = []
        self.sinks: list[Optional[SpikeRecorder]] = []
        #: Per layer, the ``.npy`` file its recorder writes (``None`` where not recorded).
        self.spike_files: list[Optional[Path]] = []
        #: Spike source of a net without an ``input`` layer (``lava.proc.io.source.RingBuffer``).
        self.source: Optional[SpikeSource] = None
        #: Extra processes -> ProcessModel class, bypassing model discovery (Lava's
        #: ``exception_proc_model_map``), e.g. for processes a graph hook attaches.
        self.model_overrides: dict[AbstractProcess, type] = {}

    @property
    def input(self) -> Optional[AbstractProcess]:
        """The input layer's neuron process (its ``bias_mant`` carries the sample), if any."""
        return self.neurons[0] if self.net.has_input_layer else None

    @property
    def starter(self) -> AbstractProcess:
        """A process to call ``run``/``stop`` on (Lava compiles everything connected to it)."""
        return self.source if self.source is not None else self.neurons[self.neuron_layers[0]]

    def set_sample(self, x: np.ndarray, raw_current: bool = False) -> None:
        """Load one sample into the compiled graph (``Var.set``; the runtime must be paused)."""
        if self.source is not None:
            self.source.data.set(to_lava_time(x, self.net.input_shape))
        else:
            self.input.bias_mant.set(self.input_bias(x, raw_current))

    @property
    def neuron_layers(self) -> list[int]:
        return [i for i, p in enumerate(self.neurons) if p is not None]

    @property
    def recorded_layers(self) -> list[int]:
        """Neuron layers with a spike sink."""
        return [i for i, p in enumerate(self.sinks) if p is not None]

    @property
    def tag(self) -> str:
        return TAGS[self.mode]

    def run_cfg(self, **kwargs) -> Loihi2SimCfg:
        """``Loihi2SimCfg`` selecting the mode's tag (``fixed_pt`` / ``floating_pt``)."""
        if self.model_overrides:
            kwargs.setdefault("exception_proc_model_map", dict(self.model_overrides))
        return Loihi2SimCfg(select_tag=self.tag, **kwargs)

    def input_bias(self, x: np.ndarray, raw_current: bool = False) -> np.ndarray:
        """The input neurons' ``bias_mant`` for one sample ``x`` (shape of the input layer),
        in Lava order: ``weight * x + bias`` (rounded in ``fixed`` mode), or ``x`` itself
        with ``raw_current`` (as ``Simulator.run(raw_current=True)``)."""
        layer = self.net.layers[0]
        fixed = self.mode == "fixed"
        if raw_current:
            current = np.asarray(x, dtype=np.float64)
            current = np.round(current) if fixed else current
        else:
            current = layer.current(np.asarray(x)[None], fixed)[0]
        if fixed:
            check_int16(current, "input current (weight * x + bias)", 0)
            current = current.astype(np.int64)
        return to_lava(current, layer.shape)


def _neuron(layer, mode: str, bias: Union[np.ndarray, float]) -> AbstractProcess:
    """The neuron process of one layer with bias ``bias_mant`` (Lava order or scalar)."""
    shape = lava_shape(layer.shape)
    n = layer.neuron
    fixed = mode == "fixed"
    if fixed:
        bias = np.asarray(np.round(bias)).astype(np.int64)
    if isinstance(n, CUBA):
        if fixed:
            return LIF(shape=shape, vth=int(n.vThMant), du=int(n.iDecay) - 1, dv=int(n.vDecay),
                       bias_mant=bias, bias_exp=STATE_SHIFT)
        return LIF(shape=shape, vth=float(n.vThMant), du=n.iDecay / DECAY_UNITY,
                   dv=n.vDecay / DECAY_UNITY, bias_mant=np.asarray(bias, dtype=np.float64))
    if isinstance(n, RMP):
        if fixed:
            return RMPNeuron(shape=shape, vth=int(n.vThMant), v_decay=int(n.vDecay),
                             bias_mant=bias, bias_exp=STATE_SHIFT)
        return RMPNeuron(shape=shape, vth=float(n.vThMant), v_decay=float(n.vDecay),
                         bias_mant=np.asarray(bias, dtype=np.float64))
    raise NeurosimError(f"unsupported neuron type {type(n).__name__}")


def _layer_bias(layer) -> Union[np.ndarray, float]:
    """A layer's neuron bias in Lava order (per-channel conv bias broadcast to every neuron)."""
    bias = getattr(layer, "bias", None)
    if bias is None:
        return 0.0
    bias = np.asarray(bias, dtype=np.float64).reshape(-1)
    if len(layer.shape) == 3:
        c, h, w = layer.shape
        bias = np.broadcast_to(bias[:, None, None], (c, h, w))
    return to_lava(bias, layer.shape)


def _netx_utils():
    """lava-dl's ``lava/lib/dl/netx/utils.py``, loaded by itself: importing it as
    ``lava.lib.dl.netx.utils`` first runs lava-dl's package ``__init__`` files (SLAYER, PyTorch,
    dataset warnings; ~6 s), while the file needs only NumPy and h5py."""
    import importlib.util
    import os
    import sys

    name = "_neurosim_netx_utils"
    if name not in sys.modules:
        spec = importlib.util.find_spec("lava.lib.dl")
        path = os.path.join(list(spec.submodule_search_locations)[0], "netx", "utils.py")
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def netx_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``(weights, num_weight_bits, weight_exp)`` for Lava's ``Dense`` as netx makes them
    (lava-dl's ``optimize_weight_bits``: the integer weights scaled to fill Loihi's 8-bit
    synapse, with ``weight_exp`` shifting the sum back). An all-zero matrix, which that function
    cannot scale, stays zero with ``weight_exp = 0``."""
    w = np.round(np.asarray(weight, dtype=np.float64))
    if not np.any(w):
        return np.zeros(w.shape, dtype=np.int64), 8, 0
    w_int, num_weight_bits, weight_exp, _ = _netx_utils().optimize_weight_bits(w)
    return np.asarray(w_int, dtype=np.int64), int(num_weight_bits), int(weight_exp)


def ungroup_conv_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv weight (out, in/groups, kh, kw) as the equivalent ``groups = 1`` weight
    (out, in, kh, kw), zero outside each group's block.

    Lava's Conv models hold ``groups`` in int8, so more than 127 groups (e.g. pooling of 128+
    channels, which is a conv with ``groups = C``) cannot be expressed; the block weight gives
    the same sums (the zeros add nothing, in float and fixed point) at the cost of one
    ``convolve2d`` per output/input channel pair in Lava's Conv model.
    """
    out, in_g, kh, kw = weight.shape
    out_g = out // groups
    full = np.zeros((out, in_g * groups, kh, kw), dtype=weight.dtype)
    for g in range(groups):
        full[g * out_g:(g + 1) * out_g, g * in_g:(g + 1) * in_g] = weight[g * out_g:(g + 1) * out_g]
    return full


def _synapse(layer, mode: str, in_shape: tuple[int, ...]) -> AbstractProcess:
    fixed = mode == "fixed"
    dtype = np.int64 if fixed else np.float64
    if isinstance(layer, Dense):
        w = np.asarray(layer.weight, dtype=np.float64)
        if not fixed:
            return LavaDense(weights=w, num_message_bits=0)
        w, num_weight_bits, weight_exp = netx_dense_weights(w)
        return LavaDense(weights=w, weight_exp=weight_exp, num_weight_bits=num_weight_bits,
                         num_message_bits=0)
    if isinstance(layer, Conv):
        w, groups = layer.weight, layer.groups
        stride, padding, dilation = layer.stride, layer.padding, layer.dilation
    elif isinstance(layer, Pool):
        c = layer.shape[0]
        w = np.broadcast_to(np.asarray(layer.weight), (c, 1, *layer.kernel_size))
        groups, stride, padding, dilation = c, layer.stride, layer.padding, (1, 1)
    else:
        raise NeurosimError(f"{type(layer).__name__} has no synapse")
    if groups > INT8_MAX:
        w, groups = ungroup_conv_weight(np.asarray(w), groups), 1
    w = lava_conv_weight(np.asarray(w, dtype=np.float64))
    w = np.round(w).astype(dtype) if fixed else w
    proc = LavaConv(weight=w, input_shape=lava_shape(in_shape), stride=tuple(stride[::-1]),
                    padding=tuple(padding[::-1]), dilation=tuple(dilation[::-1]), groups=int(groups),
                    num_message_bits=0)
    if tuple(proc.output_shape) != lava_shape(layer.shape):
        raise NeurosimError(f"Lava's Conv gives shape {tuple(proc.output_shape)[::-1]} for a layer "
                            f"of shape {tuple(layer.shape)}")
    return proc


def build_graph(net: Netlist, mode: str, steps: int, first_sample: Optional[np.ndarray] = None,
                check: bool = True, raw_current: bool = False,
                record: Optional[Sequence[int]] = None, record_dir: Optional[PathLike] = None) -> LavaGraph:
    """Create and connect the processes of ``net`` for ``mode`` ('fixed' or 'float').

    A net with an ``input`` layer takes the sample through the input neurons' ``bias_mant``
    (initially the current of ``first_sample``, zero if ``None``); a net without one takes
    0/1 spikes (T, *input_shape) from a ``lava.proc.io.source.RingBuffer`` (``graph.source``)
    whose spikes reach the first synapse like any layer's (one step of delay). Later samples
    are loaded with :meth:`LavaGraph.set_sample`. Sinks record ``steps`` time steps, on the
    neuron layers in ``record`` (default: all; ``graph.sinks[i]`` is ``None`` elsewhere), each
    into ``<record_dir>/spikes_<i>.npy`` (a temporary folder when ``record_dir`` is None).
    ``check=False`` skips :func:`~neurosim.lava.layout.check_netlist` (done by the caller; it
    imports PyTorch). RMPNeuron processes get their ProcessModel through
    ``graph.model_overrides``.
    """
    if check:
        check_netlist(net, mode)
    if steps < 1:
        raise NeurosimError(f"steps must be at least 1, got {steps}")
    g = LavaGraph(net=net, mode=mode, steps=int(steps))
    record_dir = record_dir if record_dir is not None else tempfile.mkdtemp(prefix="neurosim-spikes-")
    src_out, src_shape = None, None    # the spikes entering the next synaptic layer
    if not net.has_input_layer:
        src_shape = tuple(net.input_shape)
        data = (np.zeros((steps, *src_shape)) if first_sample is None
                else np.asarray(first_sample, dtype=np.float64))
        g.source = SpikeSource(data=to_lava_time(data, src_shape))
        src_out = g.source.s_out
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            g.neurons.append(None), g.synapses.append(None), g.sinks.append(None)
            g.spike_files.append(None)
            continue
        if isinstance(layer, Input):
            bias = g.input_bias(first_sample, raw_current) if first_sample is not None else 0
            neuron, syn = _neuron(layer, mode, bias), None
        else:
            neuron = _neuron(layer, mode, _layer_bias(layer))
            syn = _synapse(layer, mode, src_shape)
            out = src_out
            if isinstance(layer, Dense) and len(src_shape) == 3:
                out = out.transpose([2, 1, 0]).flatten()      # (W,H,C) -> (C,H,W) -> flat
            out.connect(syn.s_in)
            syn.a_out.connect(neuron.a_in)
        if isinstance(neuron, RMPNeuron):
            g.model_overrides[neuron] = RMP_MODELS[g.tag]
        sink, path = None, None
        if record is None or i in record:
            path = Path(record_dir) / f"spikes_{i}.npy"
            np.lib.format.open_memmap(path, mode="w+", dtype=bool, shape=(g.steps, *lava_shape(layer.shape))).flush()
            sink = SpikeRecorder(shape=lava_shape(layer.shape), path=str(path))
            neuron.s_out.connect(sink.a_in)
            g.model_overrides[sink] = RECORDER_MODELS[g.tag]
        g.neurons.append(neuron), g.synapses.append(syn), g.sinks.append(sink), g.spike_files.append(path)
        src_out, src_shape = neuron.s_out, tuple(layer.shape)
    return g
