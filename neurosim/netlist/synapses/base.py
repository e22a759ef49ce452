"""What a synapse kind is: the interface every executor uses instead of testing types.

A synapse kind (one module of this package each) is a small dataclass holding the parameters
of one projection (weights, geometry) whose docstring states its equation. It tells:

* the netlist: :meth:`out_shape` (validation), :attr:`type_name` (``/layer/<i>/type``),
  :meth:`write` / :meth:`read` (its HDF5 keys);
* the simulator and the metrics: :meth:`linear` (the map on a batch of spikes, PyTorch),
  :meth:`fixed_weight` (weights as the ``fixed`` mode's synapse holds them), :attr:`wrap_bits`,
  :meth:`pool_split` / :meth:`pooled_linear` (a folded pool computed as pool then synapse);
* Loihi 2: :meth:`loihi2_problem` (whether the weights are in its synapse format);
* the Lava builder: :meth:`lava_process` (Lava is imported there, only when called).

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

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of this synapse by HDF5 key (the ``fixed`` mode needs them integer)."""
        return {"weight": np.asarray(self.weight)}

    def fixed_weight(self) -> tuple[np.ndarray, int]:
        """``(w, exp)``: weights as the ``fixed`` mode's synapse holds them; the sum ``w @ s``
        is shifted left by ``exp`` (right if negative)."""
        return np.asarray(self.weight, dtype=np.float64), 0

    def torch_weight(self, weight: np.ndarray, in_shape: Shape) -> np.ndarray:
        """The weight array :meth:`linear` takes (e.g. a shared kernel repeated per channel)."""
        return weight

    def linear(self, s, weight):
        """The map on a batch ``s`` (M, *in_shape) with ``weight`` from :meth:`torch_weight`
        (torch tensors); returns (M, *out_shape)."""
        raise NotImplementedError

    def write(self, g) -> None:
        """Write this synapse's keys (not ``type``/``shape``/``source``) into HDF5 group ``g``."""
        raise NotImplementedError

    @classmethod
    def read(cls, keys, in_shape: Shape, shape: Shape) -> "SynapseKind":
        """Read the keys through ``keys`` (:class:`neurosim.netlist.hdf5.Keys`, errors name
        the file, layer and key) for spikes of ``in_shape`` into a layer of ``shape``."""
        raise NotImplementedError

    def lava_process(self, in_shape: Shape, out_shape: Shape, mode: str):
        """The Lava synapse process (``s_in`` -> ``a_out``, one step of delay) for ``mode``."""
        raise NotImplementedError

    def lava_refusal(self, in_shape: Shape) -> Optional[str]:
        """Why Lava's process for this synapse cannot be built (checked before starting Lava), or None."""
        return None

    def lava_step_cost(self, in_shape: Shape) -> int:
        """2-D convolutions Lava's model makes per step (for run-time estimates)."""
        return 0

    def loihi2_problem(self) -> Optional[str]:
        """Why the weights are not in Loihi 2's synapse format, or None: by default they must be
        integers that the 8-bit-mantissa-plus-exponent path of netx and Lava
        (:func:`neurosim.netlist.synapses.dense.loihi_dense`) keeps unchanged."""
        from neurosim.netlist.synapses.dense import loihi_dense     # dense.py imports this module

        w = np.asarray(self.weight, dtype=np.float64)
        if np.array_equal(w, np.rint(w)):
            w_int, exp = loihi_dense(w)
            if np.array_equal(np.ldexp(w_int.astype(np.float64), exp), w):
                return None
        return "weights are not 8-bit mantissas with one exponent"

    def pool_split(self, weight: np.ndarray, in_shape: Shape) -> Optional[tuple[int, np.ndarray]]:
        """``(p, small)`` if the map with the prepared ``weight`` on spikes of ``in_shape`` is a
        ``p x p`` sum pool followed by a smaller map with weights ``small``
        (:meth:`pooled_linear`), else None."""
        return None

    def pooled_linear(self, s, small, p: int):
        """:meth:`linear` computed as :meth:`pool_split`'s sum pool ``p`` and smaller map
        (``small`` as a torch tensor)."""
        raise NotImplementedError
