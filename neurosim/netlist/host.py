"""The host's arithmetic: the synapse of an analog ``Input`` layer, applied to the image.

An :class:`~neurosim.netlist.schema.Input` layer with a ``synapse`` takes the image ``x``
(its ``sample_shape``) and drives its neurons with the constant current::

    b[c, ...] = weight * synapse(x)[c, ...] + bias[c]

computed once per sample on the host (the first convolution of a converted net, as the
RMP and QCFS papers and SpikingJelly present the image: *direct* or *analog* input), in
float64 with the synapse's stored weights (integer mantissas for the ``fixed`` mode, which
rounds ``b`` to an integer). Every executor takes ``b`` from :meth:`Input.current
<neurosim.netlist.schema.Input.current>`, so the simulator and Lava see the same integers.

:data:`HOST` is the host's table of synapse kinds (:class:`~neurosim.netlist.kinds.KindTable`):
dense and conv; pooling and identity are refused (fold a pool into the conv that follows it;
an identity is the input layer's scalar ``weight``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurosim.netlist.kinds import KindTable
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool

#: A host synapse: ``(synapse, x (N, *sample_shape) float64) -> (N, *layer shape)`` float64.
HostMap = Callable[[object, np.ndarray], np.ndarray]


def dense_on_host(syn: Dense, x: np.ndarray) -> np.ndarray:
    """``a[n, o] = sum_j weight[o, j] * x[n, j]`` (``x`` flattened in (C, H, W) order)."""
    return x.reshape(len(x), -1) @ np.asarray(syn.weight, dtype=np.float64).T


def conv_on_host(syn: Conv, x: np.ndarray) -> np.ndarray:
    """PyTorch's cross-correlation (:mod:`neurosim.netlist.synapses.conv`), one kernel tap at a
    time: ``a[:, o] += weight[o, c, i, j] * x_padded[:, c, y*sy + i*dy, x*sx + j*dx]`` for
    each tap ``(i, j)`` and group (memory: the output and one strided view of the input)."""
    w = np.asarray(syn.weight, dtype=np.float64)
    out_c, in_g, kh, kw = w.shape
    (py, px), (sy, sx), (dy, dx), g = syn.padding, syn.stride, syn.dilation, int(syn.groups)
    oh, ow = syn.out_shape(x.shape[1:])[1:]
    xp = np.pad(x, ((0, 0), (0, 0), (py, py), (px, px)))
    out = np.zeros((len(x), out_c, oh, ow), dtype=np.float64)
    og = out_c // g
    for k in range(g):
        src, dst = xp[:, k * in_g:(k + 1) * in_g], out[:, k * og:(k + 1) * og]
        for i in range(kh):
            for j in range(kw):
                view = src[:, :, i * dy:i * dy + (oh - 1) * sy + 1:sy, j * dx:j * dx + (ow - 1) * sx + 1:sx]
                dst += np.einsum("oc,nchw->nohw", w[k * og:(k + 1) * og, :, i, j], view)
    return out


HOST: KindTable[HostMap] = KindTable("the host (an analog input layer)", {
    Dense: dense_on_host,
    Conv: conv_on_host,
}, refused={
    Pool: "fold the pool into the conv or dense layer that follows it (the host computes that synapse once)",
    Identity: "an identity of the image is the input layer's own scalar 'weight' (no synapse needed)",
})
