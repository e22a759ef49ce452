"""Per-layer Loihi 2 deployment report: neurons, synapses, fan-in/fan-out, neuron program,
number formats and a neuro-core estimate.

For each neuron layer ``l`` (synapses counted unrolled, every connection once, over all its
projections; fan-out over every projection that takes its spikes, :mod:`neurosim.metrics.synops`)::

    synapses_l = sum_p |connections of projection p|        fan_in_l = synapses_l / neurons_l
    cores_l    = max(ceil(neurons_l / NEURONS_PER_CORE), ceil(synapses_l * BYTES_PER_SYNAPSE / CORE_SRAM_BYTES), 1)
    chips      = ceil(sum_l cores_l / CORES_PER_CHIP)

(:mod:`neurosim.loihi2.limits` says which limits are published and which are assumptions.)
A neuron is *native* when Lava's ``LIF`` runs it as it is (CUBA, or RMP = CUBA with
``iDecay = 4096``; hard reset; ``vInit = 0``; no schedule): Loihi 2's standard neuron program.
Anything else needs a custom neuron microcode program (neurosim's ``NetlistNeuron`` has
CPU models only; on ``Loihi2HwCfg`` Lava would fall back to them, off-chip).

A projection's ``delay`` ``d > 1`` is Loihi 2's synaptic delay on a dense projection (Lava's
``DelayDense``/``DelaySparse``), up to ``d - 1 = 62`` extra steps (lava-dl netx's limit); other
kinds need neurosim's delay line (a CPU process), and a longer delay does not fit.
"""
from __future__ import annotations

import math
from typing import Any

from neurosim.loihi2 import limits as L
from neurosim.loihi2.neurons import LOIHI2_NEURONS
from neurosim.loihi2.quantize import layer_problems
from neurosim.metrics.synops import fanouts, input_fanout
from neurosim.netlist.netx_compat import NETX_MAX_EXTRA_DELAY
from neurosim.netlist.schema import Flatten, Input, Netlist, Population
from neurosim.netlist.validate import validate

#: Synapse kinds Loihi 2 runs with Lava's own synapse processes (pool: Conv with groups = C).
NATIVE_SYNAPSES = {"dense": "Dense", "conv": "Conv", "pool": "Conv (groups = C)"}


def neuron_needs(layer) -> list[str]:
    """Why the layer's neuron needs a custom Loihi 2 neuron program (empty: native LIF)."""
    n, out = layer.neuron, []
    if n not in LOIHI2_NEURONS:
        return [LOIHI2_NEURONS.refusal(n)]
    if n.soft:
        out.append("soft reset")
    if n.vInit != 0:
        out.append("vInit")
    if isinstance(layer, Population) and layer.schedule is not None:
        sch = layer.schedule
        out.append("per-step " + " and ".join(k for k in ("scale", "bias") if getattr(sch, k) is not None))
    return out


def _synapse_process(proj) -> str:
    """The Lava process that runs projection ``proj`` on Loihi 2."""
    kind, d = proj.synapse.type_name, int(proj.delay)
    if d == 1:
        return NATIVE_SYNAPSES.get(kind, f"{kind} (custom process, CPU only)")
    if kind == "dense":
        return f"DelayDense (delay {d})"
    return f"{kind} after a delay line of {d - 1} steps (custom process, CPU only)"


def delay_problems(layer) -> list[str]:
    """The layer's projection delays Loihi 2 cannot hold (more than 62 extra steps)."""
    if not isinstance(layer, Population):
        return []
    return [f"projection {p}: delay {pr.delay} > {NETX_MAX_EXTRA_DELAY + 1} steps"
            for p, pr in enumerate(layer.projections) if int(pr.delay) - 1 > NETX_MAX_EXTRA_DELAY]


def _synapses(net: Netlist, i: int) -> int:
    return int(sum(kind.fanout(net.in_shape(i, p)).sum()
                   for p, (_, kind) in enumerate(net.inputs(i))))


def deployment_report(net: Netlist) -> dict[str, Any]:
    """The report as a JSON-ready dict: ``layers`` (one row per neuron layer), ``totals``,
    ``limits`` (with ``published``/``assumed`` labels) and ``fits`` (number formats), for a net
    that passes the ``schema`` profile (what does not fit Loihi 2 is listed, not refused)."""
    validate(net, "schema")
    outs = fanouts(net)
    rows = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Flatten):
            continue
        neurons = int(math.prod(layer.shape))
        syn = 0 if isinstance(layer, Input) else _synapses(net, i)
        needs = neuron_needs(layer)
        cores = max(math.ceil(neurons / L.NEURONS_PER_CORE),
                    math.ceil(syn * L.BYTES_PER_SYNAPSE / L.CORE_SRAM_BYTES), 1)
        rows.append({
            "layer": i, "type": layer.type_name, "shape": list(layer.shape), "neurons": neurons,
            "synapses": syn, "fan_in_mean": syn / neurons,
            "fan_out_mean": float(outs[i].mean()) if outs[i].size else 0.0,
            "fan_out_max": int(outs[i].max()) if outs[i].size else 0,
            "neuron": layer.neuron.type_name, "reset": layer.neuron.reset,
            "native_neuron": not needs, "custom_program_for": needs,
            "synapse_processes": ([] if isinstance(layer, Input)
                                  else [_synapse_process(pr) for pr in layer.projections]),
            "delays": [] if isinstance(layer, Input) else [int(pr.delay) for pr in layer.projections],
            "cores": cores, "format_problems": layer_problems(net, i) + delay_problems(layer),
        })
    inp = input_fanout(net)
    cores = sum(r["cores"] for r in rows)
    return {
        "layers": rows,
        "input": None if inp is None else {"shape": list(net.input_shape), "fan_out_mean": float(inp.mean())},
        "totals": {"neurons": sum(r["neurons"] for r in rows), "synapses": sum(r["synapses"] for r in rows),
                   "cores": cores, "chips": math.ceil(cores / L.CORES_PER_CHIP),
                   "custom_neuron_layers": [r["layer"] for r in rows if not r["native_neuron"]],
                   "fits_loihi2_formats": not any(r["format_problems"] for r in rows)},
        "limits": {"published": {"cores_per_chip": L.CORES_PER_CHIP, "neurons_per_chip": L.NEURONS_PER_CHIP,
                                 "synapses_per_chip": L.SYNAPSES_PER_CHIP, "core_sram_bytes": L.CORE_SRAM_BYTES},
                   "derived_or_assumed": {"neurons_per_core": L.NEURONS_PER_CORE,
                                          "bytes_per_synapse": L.BYTES_PER_SYNAPSE,
                                          "synapses_per_core": L.SYNAPSES_PER_CORE,
                                          "conv_weights": "unrolled (no weight sharing)",
                                          "layers_share_cores": False},
                   "source": L.SOURCE},
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as a printed table (one line per neuron layer, then the totals)."""
    head = f"{'layer':>5} {'type':8} {'neurons':>8} {'synapses':>10} {'fan-in':>8} {'fan-out':>8} " \
           f"{'cores':>5}  neuron program"
    lines = [head, "-" * len(head)]
    for r in report["layers"]:
        prog = "native LIF" if r["native_neuron"] else "custom: " + ", ".join(r["custom_program_for"])
        fmt = "" if not r["format_problems"] else "  [formats: " + "; ".join(r["format_problems"]) + "]"
        lines.append(f"{r['layer']:>5} {r['type']:8} {r['neurons']:>8} {r['synapses']:>10} {r['fan_in_mean']:>8.1f} "
                     f"{r['fan_out_mean']:>8.1f} {r['cores']:>5}  {r['neuron']} {r['reset']}: {prog}{fmt}")
    t = report["totals"]
    lines.append(f"total: {t['neurons']} neurons, {t['synapses']} synapses, ~{t['cores']} neuro cores "
                 f"({t['chips']} chip(s)); custom neuron programs in layers {t['custom_neuron_layers'] or 'none'}; "
                 f"number formats {'fit' if t['fits_loihi2_formats'] else 'do NOT fit (neurosim quantize-loihi2)'}")
    return "\n".join(lines)


__all__ = ["delay_problems", "deployment_report", "format_table", "neuron_needs"]
