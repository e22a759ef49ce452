"""One measurement of ``benchmarks/bench_simulators.py``, in a fresh process.

    python benchmarks/bench_worker.py MODE SPEC.json OUT.json

MODE is one of

* ``sim``          neurosim's ``Simulator(net, 'fixed').run(x, T)`` on one batch size;
* ``slayer``       the SLAYER model built from the netlist (``slayer_from_netlist``), batched
                   forward under ``torch.no_grad()``;
* ``lava_netx``    stock ``lava.lib.dl.netx.hdf5.Network`` on Lava's CPU simulator (``fixed_pt``),
                   one compiled run streaming samples, states reset by ``lava.proc.io.reset.Reset``
                   processes (as lava-dl's netx tests do);
* ``lava_compare`` stock netx run of a few samples with explicit state resets and every layer's
                   spikes, compared with the simulator's spikes layer by layer;
* ``lava_runner``  ``neurosim.lava.runner.run_lava`` (RMP nets), timing + spike comparison.

Each measurement runs in its own process so peak RSS (``ru_maxrss``) belongs to that
configuration alone and Lava's runtime cannot leak into another measurement. The result (or
``{"error": ...}``) is written to OUT.json.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _inputs(spec: dict, net, n: int):
    """The batch of ``n`` samples the parent asked for (deterministic in the spec's seed)."""
    from nets import REFERENCE_DIR, make_inputs
    return make_inputs(spec["net"], net, n, spec["steps"], spec.get("seed", 0),
                       reference_dir=Path(spec.get("reference_dir") or REFERENCE_DIR))


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: A full-batch warm-up run is done when the 1-sample warm-up predicts it costs less than this.
FULL_WARMUP_S = 5.0
#: Lava's import time, measured in main() (Lava must be imported first in its children).
_LAVA_IMPORT_S = 0.0


def _timed_reps(fn, min_time: float, max_reps: int, first_hint: float) -> list[float]:
    """Time ``fn`` until ``min_time`` seconds are spent (at least 3 reps when a rep is short)."""
    min_reps = 3 if first_hint < 0.5 else 1
    times: list[float] = []
    while len(times) < max_reps:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if sum(times) >= min_time and len(times) >= min_reps:
            break
    return times


def _warm_up(run_small, run_full, batch: int) -> float:
    """Untimed runs: a small batch (lazy initialisation), then the full batch if that is cheap.

    Returns the predicted time of one full-batch run.
    """
    t0 = time.perf_counter()
    run_small()
    predicted = (time.perf_counter() - t0) * batch
    if predicted < FULL_WARMUP_S:
        t0 = time.perf_counter()
        run_full()
        predicted = time.perf_counter() - t0
    return predicted


def _summary(times: list[float], batch: int) -> dict:
    import numpy as np
    best = min(times)
    return {"times_s": times, "best_s": best, "median_s": float(np.median(times)),
            "samples_per_s": batch / best, "samples_per_s_median": batch / float(np.median(times))}


# ----------------------------------------------------------------------------- simulator

def run_sim(spec: dict) -> dict:
    import torch

    from nets import load_net
    from neurosim.sim.simulator import Simulator

    t0 = time.perf_counter()
    net = load_net(spec["net_path"])
    steps, batch = spec["steps"], spec["batch"]
    inputs = _inputs(spec, net, batch)
    sim = Simulator(net, "fixed")
    setup_s = time.perf_counter() - t0
    base = _maxrss_mb()
    result = {}

    def small():
        result["warm"] = sim.run(inputs.sim[:1], steps, raw_current=inputs.raw_current)

    def once():
        result.pop("r", None)           # do not hold the previous result while running
        result["r"] = sim.run(inputs.sim, steps, raw_current=inputs.raw_current, per_neuron=False)

    hint = _warm_up(small, once, batch)
    warm = result["warm"]
    times = _timed_reps(once, spec.get("min_time", 1.0), spec.get("max_reps", 5), hint)
    r = result["r"]
    out = net.output_layer
    return {
        **_summary(times, batch), "setup_s": setup_s, "base_rss_mb": base, "peak_rss_mb": _maxrss_mb(),
        "torch_threads": torch.get_num_threads(),
        "spikes_per_layer": [None if c is None else int(c.sum()) for c in r.counts],
        "output_spikes": int(r.counts[out].sum()),
        "warmup_spikes": int(sum(int(c.sum()) for c in warm.counts if c is not None)),
    }


# ----------------------------------------------------------------------------- SLAYER

def run_slayer(spec: dict) -> dict:
    import torch

    from nets import load_net
    from slayer_from_netlist import SlayerNet, output_shape, slayer_input

    t0 = time.perf_counter()
    net = load_net(spec["net_path"])
    steps, batch = spec["steps"], spec["batch"]
    inputs = _inputs(spec, net, batch)
    model = SlayerNet(net).eval()
    x = slayer_input(net, inputs.sim, steps, raw_current=inputs.raw_current)
    del inputs
    setup_s = time.perf_counter() - t0
    with torch.no_grad():       # warm-up on 2 samples: shape and spike check, not timed
        outs = model(x[:2], return_all=True)
    last = outs[-1]
    expect = output_shape(net, min(2, batch), steps)
    check = {
        "output_shape": list(last.shape), "expected_shape": list(expect),
        "shape_ok": tuple(last.shape) == tuple(expect),
        "spikes_per_layer_2_samples": [None if o is None else int((o > 0).sum()) for o in outs],
    }
    check["produces_spikes"] = sum(v for v in check["spikes_per_layer_2_samples"] if v) > 0
    del outs, last
    base = _maxrss_mb()
    result = {}

    def small():
        with torch.no_grad():
            model(x[:1])

    def once():
        result.pop("out", None)         # do not hold the previous output while running
        with torch.no_grad():
            result["out"] = model(x)

    hint = _warm_up(small, once, batch)
    times = _timed_reps(once, spec.get("min_time", 1.0), spec.get("max_reps", 5), hint)
    return {**_summary(times, batch), "setup_s": setup_s, "base_rss_mb": base, "peak_rss_mb": _maxrss_mb(),
            "torch_threads": torch.get_num_threads(), "quantize_8bit_hook": model.quantized,
            "rmp_proxy": model.proxy_rmp, "output_spikes": int((result["out"] > 0).sum()), **check}


# ----------------------------------------------------------------------------- Lava (stock netx)

def _lava_layout(a, shape):
    """(C, H, W)-ordered values of one layer -> Lava's (W, H, C) array."""
    import numpy as np
    a = np.asarray(a).reshape(shape)
    return np.ascontiguousarray(a.transpose(tuple(range(a.ndim))[::-1]))


def _from_lava(a):
    """A Lava (W, H, C) array -> flat (C, H, W) order."""
    import numpy as np
    a = np.asarray(a)
    return a.transpose(tuple(range(a.ndim))[::-1]).reshape(-1)


def run_lava_netx(spec: dict, compare: bool) -> dict:
    """Stock netx on Lava's CPU simulator; ``compare``: every layer's spikes vs the simulator."""
    t_start = time.perf_counter()
    import lava.lib.dl.netx as netx            # (already imported in main(), before anything else)
    import numpy as np
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.reset import Reset
    from lava.proc.io.source import RingBuffer

    from nets import load_net
    from neurosim.netlist.schema import Flatten

    t_import = time.perf_counter() - t_start + _LAVA_IMPORT_S
    steps, n = spec["steps"], spec["samples"]
    nl = load_net(spec["net_path"])
    inputs = _inputs(spec, nl, n)
    neuron_layers = [i for i, l in enumerate(nl.layers) if not isinstance(l, Flatten)]

    t0 = time.perf_counter()
    net = netx.hdf5.Network(net_config=str(spec["net_path"]))
    blocks = list(net.layers)
    if len(blocks) != len(neuron_layers):
        raise RuntimeError(f"netx built {len(blocks)} blocks for {len(neuron_layers)} neuron layers")
    if nl.has_input_layer:
        shape0 = tuple(nl.layers[0].shape)
        currents = np.rint(inputs.sim).astype(np.int64)
        if np.abs(currents).max() > (1 << 15) - 1:
            raise RuntimeError("input current exceeds Lava's int16 bias_mant")
        lava_currents = [_lava_layout(c, shape0) for c in currents]
        blocks[0].neuron.bias_mant.init = lava_currents[0]
    else:
        in_shape = tuple(nl.input_shape)
        # (n, T, *in) -> (*lava_in, n*T): the source plays column t-1 at step t, sample after sample
        frames = [_lava_layout(inputs.sim[k, t], in_shape) for k in range(n) for t in range(steps)]
        source = RingBuffer(data=np.stack(frames, axis=-1).astype(np.int32))
        source.s_out.connect(net.inp)
    watched = list(range(len(blocks))) if compare else [len(blocks) - 1]
    extractors = {}
    for b in watched:
        ext = Extractor(shape=blocks[b].out.shape, buffer_size=steps + 2)
        blocks[b].out.connect(ext.in_port)
        extractors[b] = ext
    if not compare:
        # netx's own tests: reset u and v of layer i every T steps, phase i - 1 (one step of
        # latency per layer), so samples stream through one run without touching Vars.
        for i, block in enumerate(blocks):
            for var in (block.neuron.u, block.neuron.v):
                Reset(interval=steps, offset=i - 1).connect_var(var)
    build_s = time.perf_counter() - t0

    # the Extractor's model has no tag: name it explicitly, everything else is fixed_pt
    cfg = Loihi2SimCfg(select_tag="fixed_pt",
                       exception_proc_model_map={Extractor: PyLoihiExtractorModel})
    spikes = {b: np.zeros((n, steps, int(np.prod(blocks[b].out.shape))), dtype=bool) for b in watched}
    timing = {"import_s": t_import, "build_s": build_s, "first_sample_s": 0.0, "run_s": 0.0,
              "input_io_s": 0.0, "reset_io_s": 0.0, "output_io_s": 0.0}
    try:
        for k in range(n):
            if k > 0:
                t1 = time.perf_counter()
                if nl.has_input_layer:
                    blocks[0].neuron.bias_mant.set(lava_currents[k])
                t2 = time.perf_counter()
                if compare:         # explicit reset: the simulator's semantics exactly
                    for block in blocks:
                        for var in (block.neuron.u, block.neuron.v):
                            var.set(np.zeros(var.shape))
                        syn = getattr(block, "synapse", None)
                        if syn is not None:
                            buf = syn.a_buff if hasattr(syn, "a_buff") else syn.a_buf
                            buf.set(np.zeros(buf.shape))
                t3 = time.perf_counter()
                timing["input_io_s"] += t2 - t1
                timing["reset_io_s"] += t3 - t2
            t4 = time.perf_counter()
            net.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            t5 = time.perf_counter()
            for b, ext in extractors.items():
                for t in range(steps):
                    spikes[b][k, t] = _from_lava(ext.receive()) != 0
            t6 = time.perf_counter()
            timing["first_sample_s" if k == 0 else "run_s"] += t5 - t4
            timing["output_io_s"] += t6 - t5
    finally:
        t7 = time.perf_counter()
        net.stop()
        timing["stop_s"] = time.perf_counter() - t7
    timing["startup_s"] = timing["import_s"] + timing["build_s"] + timing["first_sample_s"]
    out = {"timing": timing, "samples": n, "steps": steps, "blocks": len(blocks)}
    if n > 1:
        per_step = timing["run_s"] / ((n - 1) * steps)
        io = (timing["input_io_s"] + timing["reset_io_s"] + timing["output_io_s"]) / n
        out.update(per_step_s=per_step, samples_per_s=1.0 / (per_step * steps),
                   io_per_sample_s=io, samples_per_s_with_io=1.0 / (per_step * steps + io))
    out["output_spikes"] = int(spikes[len(blocks) - 1].sum())
    if compare:
        out["compare"] = _compare(nl, inputs, steps, {neuron_layers[b]: spikes[b] for b in watched})
    return out


def _compare(nl, inputs, steps: int, lava_spikes: dict) -> dict:
    """Per layer: spikes of the simulator vs Lava ((N, T, n), (C, H, W) order) -> mismatch counts."""
    from neurosim.sim.simulator import Simulator

    r = Simulator(nl, "fixed").run(inputs.sim, steps, record_spikes=True, raw_current=inputs.raw_current)
    layers = []
    for i, lava in sorted(lava_spikes.items()):
        sim = r.spikes[i]
        layers.append({"layer": i, "type": nl.layers[i].type_name, "neurons": int(sim.shape[-1]),
                       "sim_spikes": int(sim.sum()), "lava_spikes": int(lava.sum()),
                       "mismatches": int((sim != lava).sum()) if sim.shape == lava.shape else None,
                       "shape_sim": list(sim.shape), "shape_lava": list(lava.shape)})
    total = [l["mismatches"] for l in layers]
    return {"layers": layers, "total_mismatches": None if None in total else int(sum(total)),
            "samples": int(len(inputs.sim))}


# ----------------------------------------------------------------------------- Lava (neurosim runner)

def run_lava_runner(spec: dict) -> dict:
    from nets import load_net
    from neurosim.lava.runner import run_lava

    steps, n = spec["steps"], spec["samples"]
    nl = load_net(spec["net_path"])
    inputs = _inputs(spec, nl, n)
    t0 = time.perf_counter()
    res = run_lava(spec["net_path"], inputs.x, steps, "fixed", timeout=spec.get("timeout"), progress=False,
                   batch=None)                      # the per-sample graph (benchmarks/lava_batched.py: batched)
    wall = time.perf_counter() - t0
    timing = {k: float(v) for k, v in res.timing.items() if isinstance(v, (int, float))}
    out = {"timing": timing, "samples": n, "steps": steps, "wall_s": wall,
           "models": dict(getattr(res, "models", {}) or {})}
    per_step = timing.get("per_step_s")
    if per_step is None and n > 1 and "run_s" in timing:
        per_step = timing["run_s"] / ((n - 1) * steps)
    if per_step:
        io = timing.get("io_s", 0.0) / n
        out.update(per_step_s=per_step, samples_per_s=1.0 / (per_step * steps), io_per_sample_s=io,
                   samples_per_s_with_io=1.0 / (per_step * steps + io))
    steady = timing.get("run_s", 0.0) + timing.get("io_s", 0.0) + timing.get("stop_s", 0.0)
    timing["startup_s"] = max(0.0, timing.get("wall_s", wall) - steady)
    out["output_spikes"] = int(res.counts[nl.output_layer].sum())
    lava_spikes = {i: s for i, s in enumerate(res.spikes) if s is not None}
    out["compare"] = _compare(nl, inputs, steps, lava_spikes)
    return out


# ----------------------------------------------------------------------------- main

MODES = {
    "sim": run_sim,
    "slayer": run_slayer,
    "lava_netx": lambda spec: run_lava_netx(spec, compare=False),
    "lava_compare": lambda spec: run_lava_netx(spec, compare=True),
    "lava_runner": run_lava_runner,
}


def main(argv: list[str]) -> int:
    global _LAVA_IMPORT_S
    mode, spec_path, out_path = argv
    if mode.startswith("lava"):
        t0 = time.perf_counter()
        import lava.lib.dl.netx  # noqa: F401  -- Lava sets the 'fork' start method at import
        _LAVA_IMPORT_S = time.perf_counter() - t0
    sys.path[:0] = [str(HERE), str(ROOT)]
    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        import torch
        torch.set_num_threads(int(spec["threads"]))
    try:
        result = {"ok": True, **MODES[mode](spec)}
    except BaseException as exc:  # report everything; the parent decides
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()[:2000],
                  "traceback": traceback.format_exc()[-4000:]}
    result["max_rss_mb"] = _maxrss_mb()
    tmp = Path(out_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(result, default=float))
    os.replace(tmp, out_path)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
