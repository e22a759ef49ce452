"""What a synapse kind is: data and its rules, the same for every executor.

A synapse kind (one module of this package each) is a small dataclass holding the parameters
of one projection (weights, geometry) whose docstring states its equation. It tells, with
NumPy only:

* the netlist: :meth:`rules` and :meth:`out_shape` (its rules, applied by
  :mod:`neurosim.netlist.validate`), :attr:`type_name` (``/layer/<i>/type``),
  :meth:`write` / :meth:`read` (its HDF5 keys), :meth:`arrays`;
* its connectivity: :meth:`fanout` (synapses leaving each input neuron, for SynOps);
* the ``fixed`` mode's arithmetic: :meth:`fixed_weight`, :attr:`wrap_bits`.

How an executor computes or builds a kind is that executor's, in a :class:`~neurosim.netlist.kinds.KindTable` from kind
class to implementation (a kind it cannot express is refused there, with the reason):
:data:`neurosim.sim.synapse_maps.MAPS` (the simulator's PyTorch maps),
:data:`neurosim.lava.synapses.LAVA` (Lava processes), :data:`neurosim.loihi2.synapses.FORMATS`
(Loihi 2's weight format), :data:`neurosim.netlist.netx_compat.NETX` (what netx builds).

Spikes and currents are in the netlist's (C, H, W) order; a kind with ``flat_input`` takes
its source flattened in that order (a dense layer after a conv).
"""
from __future__ import annotations

from typing import Any, ClassVar, Optional

import numpy as np

from neurosim.netlist.schema import Shape



class SynapseKind:
    """Base of the synapse dataclasses (see the module docstring)."""

    #: ``/layer/<i>/type`` of a layer whose first projection is of this kind.
    type_name: ClassVar[str] = ""
    noun: ClassVar[str] = "synapse"
    #: The source's spikes arrive flattened in (C, H, W) order.
    flat_input: ClassVar[bool] = False
    #: ``fixed`` mode: synaptic sums wrap to this many signed bits (Lava's Conv), or never.
    wrap_bits: ClassVar[Optional[int]] = None
    #: Has an event-driven path in the simulator (sparse input of a dense layer).
    events: ClassVar[bool] = False

    weight: Any

    def out_shape(self, in_shape: Shape) -> Shape:
        """Shape of the current for spikes of ``in_shape``; ``ValueError`` if they do not fit."""
        raise NotImplementedError

    def rules(self) -> Optional[tuple[str, str]]:
        """``(key, reason)`` for the first of the kind's own parameters (geometry, a weight's
        tighter limit) outside its range, or None. The validator checks the rest: every array of
        :meth:`arrays` finite within ``MAX_ABS_VALUE``, and the shapes through :meth:`out_shape`."""
        return None

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of this synapse by HDF5 key (the ``fixed`` mode needs them integer)."""
        return {"weight": np.asarray(self.weight)}

    def fixed_weight(self) -> tuple[np.ndarray, int]:
        """``(w, exp)``: weights as the ``fixed`` mode's synapse holds them; the sum ``w @ s``
        is shifted left by ``exp`` (right if negative)."""
        return np.asarray(self.weight, dtype=np.float64), 0

    def fanout(self, in_shape: Shape) -> np.ndarray:
        """Number of synapses leaving each input neuron (borders included), shape ``in_shape``
        (int64): the connections, whatever the weights' values."""
        raise NotImplementedError

    def write(self, g) -> None:
        """Write this synapse's keys (not ``type``/``shape``/``source``) into HDF5 group ``g``."""
        raise NotImplementedError

    @classmethod
    def read(cls, keys, in_shape: Shape, shape: Shape) -> "SynapseKind":
        """Read the keys through ``keys`` (:class:`neurosim.netlist.hdf5.Keys`, errors name
        the file, layer and key) for spikes of ``in_shape`` into a layer of ``shape``. Only the
        file's forms are checked here (dtypes, alternative layouts, keys that must agree); the
        reader applies :meth:`rules` and :meth:`out_shape` with the rest of the schema."""
        raise NotImplementedError


def taps(size: int, out: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> np.ndarray:
    """Per input position along one axis: how many (output position, kernel tap) pairs of a
    cross-correlation read it (padding reads nothing)."""
    count = np.zeros(size, dtype=np.int64)
    pos = (np.arange(out)[:, None] * stride - padding + np.arange(kernel)[None, :] * dilation).reshape(-1)
    pos = pos[(pos >= 0) & (pos < size)]
    np.add.at(count, pos, 1)
    return count
