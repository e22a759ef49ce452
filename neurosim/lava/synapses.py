"""The Lava backend's table of synapse kinds: the Lava process of each kind, its refusal and
its cost. No Lava import at module level (the parent side of a guarded run checks netlists
with :func:`lava_refusal` and estimates time with :func:`lava_step_cost`).

:data:`LAVA` (a :class:`~neurosim.netlist.synapses.base.KindTable`) gives for each kind of
:data:`neurosim.netlist.synapses.KINDS` a :class:`LavaSynapse` subclass:

* :meth:`LavaSynapse.process`: the Lava synapse process (``s_in`` -> ``a_out``, one step of
  delay) for a mode, with netx's weight layouts (:func:`netx_dense_weights`,
  :func:`lava_conv_weight`);
* :meth:`LavaSynapse.refusal`: why it cannot be built (checked before starting Lava), or None;
* :meth:`LavaSynapse.step_cost`: 2-D convolutions Lava's model makes per step;
* :meth:`LavaSynapse.matrix`: the projection unrolled to its sparse (out, in) matrix, neurons in
  the netlist's (C, H, W) order (a conv or pool as Loihi maps it: one synapse per (output,
  input) pair), for the batched graph's :class:`~neurosim.lava.process.SparseSynapse`.

:func:`connection` gives a projection's :class:`Connection`: that matrix with the values the
mode's synapse holds (``fixed``: :meth:`~neurosim.netlist.synapses.base.SynapseKind.fixed_weight`,
Dense's 8-bit mantissas with their exponent) and the kind's ``wrap_bits``, so that
``wrap(shift(W @ s))`` is, integer for integer, what Lava's ``Dense`` / ``Conv`` / neurosim's
``IdentitySynapse`` compute for that projection.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import sparse

from neurosim.netlist.schema import Shape
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool
from neurosim.netlist.kinds import KindTable
from neurosim.netlist.synapses.base import SynapseKind
from neurosim.netlist.synapses.conv import INT8_MAX, check_lava_geometry, ungroup_conv_weight


def netx_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``(weights, num_weight_bits, weight_exp)`` for Lava's ``Dense`` as netx makes them
    (lava-dl's ``optimize_weight_bits``, loaded by :func:`neurosim.lava.layout.netx_utils`).
    An all-zero matrix, which that function cannot scale, stays zero with ``weight_exp = 0``."""
    from neurosim.lava.layout import netx_utils

    w = np.round(np.asarray(weight, dtype=np.float64))
    if not np.any(w):
        return np.zeros(w.shape, dtype=np.int64), 8, 0
    w_int, num_weight_bits, weight_exp, _ = netx_utils().optimize_weight_bits(w)
    return np.asarray(w_int, dtype=np.int64), int(num_weight_bits), int(weight_exp)


def lava_conv_weight(weight: np.ndarray) -> np.ndarray:
    """PyTorch cross-correlation weight (out, in, kh, kw) to Lava's conv weight (out, kw, kh, in)."""
    w = np.asarray(weight)
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose((0, 3, 2, 1)))


def lava_conv_process(weight: np.ndarray, groups: int, stride, padding, dilation, in_shape: Shape,
                      out_shape: Shape, mode: str):
    """``lava.proc.conv.process.Conv`` for a PyTorch-layout weight (groups above 127 expanded)."""
    from lava.proc.conv.process import Conv as LavaConv

    from neurosim.lava.layout import lava_shape

    fixed = mode == "fixed"
    if groups > INT8_MAX:
        weight, groups = ungroup_conv_weight(np.asarray(weight), groups), 1
    w = lava_conv_weight(np.asarray(weight, dtype=np.float64))
    w = np.round(w).astype(np.int64) if fixed else w
    proc = LavaConv(weight=w, input_shape=lava_shape(in_shape), stride=tuple(stride[::-1]),
                    padding=tuple(padding[::-1]), dilation=tuple(dilation[::-1]), groups=int(groups),
                    num_message_bits=0)
    if tuple(proc.output_shape) != lava_shape(out_shape):
        raise ValueError(f"Lava's Conv gives shape {tuple(proc.output_shape)[::-1]} for a layer of "
                         f"shape {tuple(out_shape)}")
    return proc


def conv_matrix(weight: np.ndarray, groups: int, stride, padding, dilation, in_shape: Shape,
                out_shape: Shape) -> sparse.csc_matrix:
    """PyTorch's cross-correlation of (C, H, W) spikes with ``weight`` (out, in/groups, kh, kw) as
    its sparse (O*OH*OW, C*H*W) matrix, both sides flattened in (C, H, W) order; taps that read
    the padding, and zero weights, have no entry."""
    weight = np.asarray(weight)
    o_ch, c_g, kh, kw = weight.shape
    c, h, w = (int(v) for v in in_shape)
    oh, ow = (int(v) for v in out_shape[1:])
    group = np.arange(o_ch) // (o_ch // int(groups))                       # group of each output channel
    rows, cols, vals = [], [], []
    for i in range(kh):
        for j in range(kw):
            y = np.arange(oh) * stride[0] - padding[0] + i * dilation[0]
            x = np.arange(ow) * stride[1] - padding[1] + j * dilation[1]
            oy, ox = np.flatnonzero((y >= 0) & (y < h)), np.flatnonzero((x >= 0) & (x < w))
            out_pos = (oy[:, None] * ow + ox[None, :]).reshape(-1)             # output pixels reading (i, j)
            in_pos = (y[oy][:, None] * w + x[ox][None, :]).reshape(-1)         # the input pixel each reads
            o, k = np.meshgrid(np.arange(o_ch), np.arange(c_g), indexing="ij")  # (output, input-in-group) channel
            rows.append((o[..., None] * (oh * ow) + out_pos).reshape(-1))
            cols.append(((group[o] * c_g + k)[..., None] * (h * w) + in_pos).reshape(-1))
            vals.append(np.broadcast_to(weight[o, k, i, j][..., None], (o_ch, c_g, len(out_pos))).reshape(-1))
    m = sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(o_ch * oh * ow, c * h * w)).tocsc()
    m.eliminate_zeros()
    return m


class Connection:
    """A projection as the batched graph's synapse computes it: ``a = wrap(shift(W @ s))``.

    ``matrix``: (n_out, n_in) CSC, neurons in (C, H, W) order, int64 (``fixed``) or float64;
    ``shift``: the sum is shifted left by it (right if negative; Dense's ``weight_exp``);
    ``wrap_bits``: the shifted sum wraps to this many signed bits (Conv's 24), or never.
    (A plain class: Lava's ProcessModel discovery executes this module under a bare name.)
    """

    def __init__(self, matrix: sparse.csc_matrix, shift: int = 0, wrap_bits: Optional[int] = None) -> None:
        self.matrix, self.shift, self.wrap_bits = matrix, int(shift), wrap_bits


class LavaSynapse:
    """How the Lava backend builds one synapse kind (class methods taking the kind)."""

    @staticmethod
    def process(kind: SynapseKind, in_shape: Shape, out_shape: Shape, mode: str):
        """The Lava synapse process (``s_in`` -> ``a_out``, one step of delay) for ``mode``."""
        raise NotImplementedError

    @staticmethod
    def refusal(kind: SynapseKind, in_shape: Shape) -> Optional[str]:
        """Why Lava's process for this synapse cannot be built, or None."""
        return None

    @staticmethod
    def step_cost(kind: SynapseKind, in_shape: Shape) -> int:
        """2-D convolutions Lava's model makes per step (for run-time estimates)."""
        return 0

    @staticmethod
    def matrix(kind: SynapseKind, weight: np.ndarray, in_shape: Shape, out_shape: Shape) -> sparse.csc_matrix:
        """The projection's (out, in) matrix with the kind's geometry and the values ``weight``
        (of the kind's weight's shape), neurons in (C, H, W) order."""
        raise NotImplementedError


class LavaDense(LavaSynapse):
    @staticmethod
    def process(kind: Dense, in_shape: Shape, out_shape: Shape, mode: str):
        from lava.proc.dense.process import Dense as LavaDenseProcess

        w = np.asarray(kind.weight, dtype=np.float64)
        if mode != "fixed":
            return LavaDenseProcess(weights=w, num_message_bits=0)
        w, num_weight_bits, weight_exp = netx_dense_weights(w)
        return LavaDenseProcess(weights=w, weight_exp=weight_exp, num_weight_bits=num_weight_bits,
                                num_message_bits=0)

    @staticmethod
    def matrix(kind: Dense, weight: np.ndarray, in_shape: Shape, out_shape: Shape) -> sparse.csc_matrix:
        m = sparse.csc_matrix(np.asarray(weight))
        m.eliminate_zeros()
        return m


class LavaConv(LavaSynapse):
    @staticmethod
    def process(kind: Conv, in_shape: Shape, out_shape: Shape, mode: str):
        return lava_conv_process(kind.weight, kind.groups, kind.stride, kind.padding, kind.dilation,
                                 in_shape, out_shape, mode)

    @staticmethod
    def refusal(kind: Conv, in_shape: Shape) -> Optional[str]:
        return check_lava_geometry(kind.weight.shape[2:], kind.stride, kind.padding, kind.dilation)

    @staticmethod
    def step_cost(kind: Conv, in_shape: Shape) -> int:
        return int(kind.weight.shape[0] * kind.weight.shape[1])

    @staticmethod
    def matrix(kind: Conv, weight: np.ndarray, in_shape: Shape, out_shape: Shape) -> sparse.csc_matrix:
        return conv_matrix(weight, kind.groups, kind.stride, kind.padding, kind.dilation, in_shape, out_shape)


class LavaPool(LavaSynapse):
    """``Conv`` with ``groups = C`` and the kernel repeated per channel."""

    @staticmethod
    def process(kind: Pool, in_shape: Shape, out_shape: Shape, mode: str):
        c = int(in_shape[0])
        w = np.broadcast_to(np.asarray(kind.weight), (c, 1, *kind.kernel_size))
        return lava_conv_process(w, c, kind.stride, kind.padding, (1, 1), in_shape, out_shape, mode)

    @staticmethod
    def refusal(kind: Pool, in_shape: Shape) -> Optional[str]:
        return check_lava_geometry(kind.kernel_size, kind.stride, kind.padding, (1, 1))

    @staticmethod
    def step_cost(kind: Pool, in_shape: Shape) -> int:
        return int(in_shape[0])

    @staticmethod
    def matrix(kind: Pool, weight: np.ndarray, in_shape: Shape, out_shape: Shape) -> sparse.csc_matrix:
        c = int(in_shape[0])
        w = np.broadcast_to(np.asarray(weight), (c, 1, *kind.kernel_size))
        return conv_matrix(w, c, kind.stride, kind.padding, (1, 1), in_shape, out_shape)


class LavaIdentity(LavaSynapse):
    """neurosim's :class:`~neurosim.lava.process.IdentitySynapse`."""

    @staticmethod
    def process(kind: Identity, in_shape: Shape, out_shape: Shape, mode: str):
        from neurosim.lava.layout import lava_shape
        from neurosim.lava.process import IdentitySynapse

        w = float(kind.weight)
        return IdentitySynapse(shape=lava_shape(in_shape), weight=int(round(w)) if mode == "fixed" else w)

    @staticmethod
    def matrix(kind: Identity, weight: np.ndarray, in_shape: Shape, out_shape: Shape) -> sparse.csc_matrix:
        n = int(np.prod(in_shape))
        m = sparse.diags(np.full(n, float(weight)), format="csc")
        m.eliminate_zeros()
        return m


#: Synapse kind class -> how the Lava backend builds it.
LAVA: KindTable[type] = KindTable("Lava", {
    Dense: LavaDense,
    Conv: LavaConv,
    Pool: LavaPool,
    Identity: LavaIdentity,
})


def lava_refusal(kind: SynapseKind, in_shape: Shape) -> Optional[str]:
    """Why the Lava backend cannot build ``kind`` for spikes of ``in_shape`` (one line), or None."""
    return LAVA.refusal(kind) or LAVA.of(kind).refusal(kind, in_shape)


def lava_process(kind: SynapseKind, in_shape: Shape, out_shape: Shape, mode: str):
    """The Lava synapse process of ``kind`` (``ValueError`` if it cannot be built)."""
    return LAVA.of(kind).process(kind, in_shape, out_shape, mode)


def connection(kind: SynapseKind, in_shape: Shape, out_shape: Shape, mode: str) -> Connection:
    """The :class:`Connection` of a projection of ``kind`` in ``mode``: ``fixed`` takes the
    kind's :meth:`~neurosim.netlist.synapses.base.SynapseKind.fixed_weight` (mantissas and
    their exponent) as int64 and its ``wrap_bits``; ``float`` the weights as they are."""
    if mode == "fixed":
        weight, shift = kind.fixed_weight()
        m = LAVA.of(kind).matrix(kind, np.round(np.asarray(weight, dtype=np.float64)), in_shape, out_shape)
        return Connection(m.astype(np.int64), shift, kind.wrap_bits)
    m = LAVA.of(kind).matrix(kind, np.asarray(kind.weight, dtype=np.float64), in_shape, out_shape)
    return Connection(m.astype(np.float64))


def lava_step_cost(kind: SynapseKind, in_shape: Shape) -> int:
    """2-D convolutions Lava's model of ``kind`` makes per step (0 for a kind Lava refuses)."""
    return LAVA.of(kind).step_cost(kind, in_shape) if kind in LAVA else 0
