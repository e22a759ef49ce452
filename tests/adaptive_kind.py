"""An adaptive-threshold neuron kind added the way docs/netlist.md ("Adding a kind") says: its
data class with its parameter table, a scan for the simulator and one step per numeric mode for
Lava's generic neuron, nothing else. ``tests/test_kind_tables.py`` uses it.

Run as ``python -m tests.adaptive_kind OUT.npz``: registers the kind in this process, runs the
test net through Lava (batched graph, in this process, both modes) and saves the spikes and final
voltages of the output layer (the test runs it in a subprocess with a timeout, so that a Lava
failure cannot hang the suite, and so that the registration does not outlive it).
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable, ClassVar

import numpy as np

from neurosim.lava.neurons import LAVA_NEURONS, LavaNeuron
from neurosim.netlist import Input, Netlist, dense
from neurosim.netlist.neurons import KINDS, NEURON_TYPES, RMP
from neurosim.netlist.neurons.base import NeuronKind, Param
from neurosim.sim.neurons import NEURONS

#: The test net's weights (integers, so that both modes see the same input) and inputs.
W = np.array([[30.0, 10.0, 25.0], [5.0, 40.0, 20.0]])
X = np.array([[2.0, 7.0, 4.0], [9.0, 1.0, 5.0]])
STEPS = 40


@dataclasses.dataclass(frozen=True)
class ALIF(NeuronKind):
    """Adaptive threshold: ``v += a + b``; spike if ``v > vThMant + th``; then
    ``v -= vThMant + th`` and ``th += beta``; ``th`` halves every step (``fixed``: ``th >> 1``,
    ``beta << 6`` in state units)."""
    vThMant: float = 40
    beta: float = 20
    reset: str = "soft"
    vInit: float = 0
    type_name: ClassVar[str] = "ALIF"
    default_reset: ClassVar[str] = "soft"
    params: ClassVar[tuple] = (Param("vThMant", 0, 1000, voltage=True), Param("beta", 0, 1000, default=20),
                               Param("vInit", -1000, 1000, voltage=True, default=0, written="nondefault"))
    state: ClassVar[tuple] = ("v", "th")

    def step_constants(self) -> dict[str, Any]:
        return {"beta": float(self.beta)}


def alif_scan(fixed, c, a, bias, vth, may_wrap, state, s_out, counts, v_trace, v_changed) -> None:
    """The simulator's scan (``float`` mode)."""
    v, th = state["v"], state["th"]
    for t in range(len(s_out)):
        before = v.copy()
        v += (a[0] if len(a) == 1 else a[t]) + (bias[0] if len(bias) == 1 else bias[t])
        thr = vth + th
        s = v > thr
        v -= s * thr
        th *= 0.5
        th += c["beta"] * s
        s_out[t] = s
        counts += s.astype(counts.dtype)
        if len(v_trace):
            v_trace[t] = v
        if len(v_changed):
            v_changed[t] = v != before


def alif_step_float(state: dict, a, bias, vth, c: dict) -> np.ndarray:
    """Lava's step, ``floating_pt`` (mantissa units)."""
    v = state["v"] + a + bias
    thr = vth + state["th"]
    s = v > thr
    state["v"], state["th"] = v - s * thr, state["th"] * 0.5 + c["beta"] * s
    return s


def alif_step_fixed(state: dict, a, bias, vth, c: dict) -> np.ndarray:
    """Lava's step, ``fixed_pt`` (int64 state units: the input ``a << 6``)."""
    v = state["v"] + (a << 6) + bias
    thr = vth + state["th"]
    s = v > thr
    state["v"], state["th"] = v - s * thr, (state["th"] >> 1) + (int(c["beta"]) << 6) * s
    return s


def register(setitem: Callable[[dict, Any, Any], None]) -> None:
    """Put the kind into the netlist's registry and the two executors' tables (``setitem``:
    ``monkeypatch.setitem``, or a plain assignment in a process of its own)."""
    setitem(KINDS, "ALIF", ALIF)
    setitem(NEURON_TYPES, "ALIF", ALIF)
    setitem(NEURONS.implemented, ALIF, alif_scan)
    setitem(LAVA_NEURONS.implemented, ALIF, LavaNeuron({"float": alif_step_float, "fixed": alif_step_fixed}))


def net() -> Netlist:
    return Netlist([Input((3,), RMP(vThMant=10)), dense((2,), W, ALIF())], input_shape=(3,))


def expected(fixed: bool) -> tuple[np.ndarray, np.ndarray]:
    """The output layer's spikes (N, T, 2) and final v (N, 2) by a NumPy loop (state units in
    ``fixed``), from the input layer's spikes (RMP, threshold 10, the input as its current)."""
    n = len(X)
    vin, s_in = np.zeros((n, 3)), np.zeros((n, STEPS, 3))
    for t in range(STEPS):
        vin += X
        s_in[:, t] = vin > 10
        vin -= 10 * s_in[:, t]
    v = np.zeros((n, 2), np.int64 if fixed else np.float64)
    th = np.zeros_like(v)
    spikes = np.zeros((n, STEPS, 2), bool)
    for t in range(1, STEPS):                                         # one step of synaptic delay
        a = (s_in[:, t - 1] @ W.T).astype(v.dtype)
        v = v + (a * 64 if fixed else a)
        thr = (40 * 64 if fixed else 40) + th
        s = v > thr
        v = v - s * thr
        th = (th >> 1) + 20 * 64 * s if fixed else th * 0.5 + 20 * s
        spikes[:, t] = s
    return spikes, v


def main(out: str) -> None:
    from neurosim.lava.builder import build_batched_graph
    from neurosim.lava.worker import run_samples

    register(lambda d, k, v: d.__setitem__(k, v))
    arrays = {}
    for mode in ("float", "fixed"):
        graph = build_batched_graph(net(), mode, STEPS, batch=len(X))
        res = run_samples(graph, X, progress=False)
        arrays[f"spikes_{mode}"], arrays[f"v_{mode}"] = res["spikes_1"], res["v_1"]
        arrays[f"model_{mode}"] = np.array(res["models"]["layer 1 neurons"])
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
