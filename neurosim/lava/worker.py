"""The child process of :func:`neurosim.lava.runner.run_lava`: ``python -m neurosim.lava.worker JOBDIR``.

It reads the job (:func:`neurosim.lava.jobs.read_job`: mode, steps, the netlist, checked as the
parent checked it, and the samples), builds the Lava graph, compiles it once and streams every
sample through it. The batched graph (job ``batch`` > 0)::

    for each batch of B samples: write their input into input.npy, run(RunSteps(T)),
                                 read the spike and voltage files the neurons wrote

(each process resets its state at every sample's first step); the per-sample graph::

    for each sample: set the input bias, the v and u of Lava's LIF neurons, zero Lava's synapse
                     buffers (Var.set), run(RunSteps(T)), read the recorded spikes and v (Var.get)

and writes the results into the job folder. Progress goes there too (stage and sample) and, as a
tqdm bar, to stderr. On an error it reports it (message, sample, traceback) before stopping the
runtime; ``stop()`` always runs. When the parent dies, the worker's guardian stops its process
group (:func:`neurosim.lava.lifetime.watch_parent`).
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from neurosim.lava.jobs import PROGRESS, Stage, read_job, report_error, write_result
from neurosim.lava.lifetime import watch_parent


def run_samples(graph, x: np.ndarray, stage: Optional[Stage] = None, progress: bool = True,
                raw_current: bool = False, spike_samples: Optional[int] = None, offset: int = 0,
                on_error: Optional[Callable[[BaseException], None]] = None) -> dict:
    """Stream the samples ``x`` through ``graph`` in one compiled Lava run (in this process).

    ``graph`` is a :class:`~neurosim.lava.builder.LavaGraph` (one sample per run of
    ``graph.steps`` steps; sample 0 must already be in it: ``build_graph(first_sample=x[0])``)
    or a :class:`~neurosim.lava.builder.BatchedGraph` (``graph.samples`` per run): per unit of
    :meth:`~neurosim.lava.builder.LavaGraph.units`, load, run, read. Returns, per recorded
    neuron layer ``i``, ``spikes_<i>`` (K, T, n) bool, ``v_<i>`` (K, n) and ``counts_<i>``
    (K, n) of the first ``K = spike_samples`` samples (default all), and ``readout_counts``,
    ``readout_v`` (N, R, n_out): the output layer's spike counts and voltage after each of
    the graph's R ``readout_steps``, for every sample; neurons in (C, H, W) order,
    v in state units; plus ``timing`` and ``models`` (the chosen ProcessModels). ``stage``
    names samples ``offset`` higher (their numbers among the caller's samples).
    The runtime is always stopped; ``on_error(exc)`` is called before stopping it when a
    step fails (stopping a runtime whose ProcessModel raised can hang).
    """
    from lava.magma.core.run_conditions import RunSteps
    from tqdm.auto import tqdm

    stage = stage or Stage()
    net, steps, fixed = graph.net, graph.steps, graph.mode == "fixed"
    recorded, out_layer = graph.recorded_layers, net.output_layer
    n_samples = len(x)
    keep = n_samples if spike_samples is None else min(int(spike_samples), n_samples)
    sizes = {i: int(np.prod(net.layers[i].shape)) for i in recorded}
    state = np.int64 if fixed else np.float64
    spikes = {i: np.zeros((keep, steps, sizes[i]), dtype=bool) for i in recorded}
    vs = {i: np.zeros((keep, sizes[i]), dtype=state) for i in recorded}
    rows = np.asarray(graph.readout_steps) - 1           # the output layer's readout steps, 0-based
    readout_counts = np.zeros((n_samples, len(rows), sizes[out_layer]), dtype=np.int64)
    readout_v = np.zeros((n_samples, len(rows), sizes[out_layer]), dtype=state)
    run_cfg = graph.run_cfg()
    starter = graph.starter
    timing = {"compile_s": 0.0, "first_run_s": 0.0, "run_s": 0.0, "io_s": 0.0}
    try:
        stage.set("compiling the Lava graph (and starting its processes) for", sample=offset,
                  to=offset + min(n_samples, graph.samples))
        t = time.perf_counter()
        starter.create_runtime(run_cfg=run_cfg)    # compile once; every unit reuses it
        timing["compile_s"] = time.perf_counter() - t
        bar = tqdm(total=n_samples, desc=f"lava ({graph.tag}, T={steps})", unit="sample",
                   disable=not progress, file=sys.stderr, leave=False)
        for k, unit in enumerate(graph.units(n_samples)):
            size = unit.stop - unit.start
            t0 = time.perf_counter()
            stage.set("loading", sample=offset + unit.start, to=offset + unit.stop)
            graph.load(x[unit], first=k == 0, raw_current=raw_current)
            t1 = time.perf_counter()
            stage.set("running", sample=offset + unit.start, to=offset + unit.stop)
            starter.run(condition=RunSteps(num_steps=steps, blocking=True))
            t2 = time.perf_counter()
            stage.set("reading the results of", sample=offset + unit.start, to=offset + unit.stop)
            for i in recorded:
                if i != out_layer and unit.start >= keep:
                    continue
                s, v = graph.read(i, size)
                if i == out_layer:
                    readout_counts[unit] = s.cumsum(1, dtype=np.int64)[:, rows]
                    readout_v[unit] = v
                if unit.start < keep:
                    kept = slice(unit.start, min(unit.stop, keep))
                    spikes[i][kept] = s[:kept.stop - kept.start]
                    vs[i][kept] = v[:kept.stop - kept.start, -1]
            t3 = time.perf_counter()
            timing["first_run_s" if k == 0 else "run_s"] += t2 - t1
            timing["io_s"] += (t1 - t0) + (t3 - t2)
            stage.set(stage.what, done=unit.stop)
            bar.update(size)
        bar.close()
    except BaseException as exc:
        exc.lava_process_errors = _process_errors(starter)
        if on_error is not None:
            on_error(exc)
        raise
    finally:
        stage.set("stopping the runtime after")
        t4 = time.perf_counter()
        try:
            starter.stop()
        finally:
            timing["stop_s"] = time.perf_counter() - t4
    out = {"readout_counts": readout_counts, "readout_v": readout_v}
    for i in recorded:
        out[f"spikes_{i}"] = spikes[i]
        out[f"v_{i}"] = vs[i]
        out[f"counts_{i}"] = spikes[i].sum(1, dtype=np.int64)
    out["timing"] = timing
    out["models"] = {f"layer {i} {role}": f"{type(p).__name__} -> {getattr(p.model_class, '__name__', '?')}"
                     for i in graph.neuron_layers for role, p in graph.roles(i)}
    return out


def _process_errors(proc) -> list[str]:
    """Tracebacks of the Lava processes that raised. Lava's run() only says "N Exception(s)
    occurred. See output above" and logs them at INFO level; the actors keep them."""
    try:
        actors = proc.runtime._messaging_infrastructure.actors
    except AttributeError:
        return []
    errors = []
    for actor in actors:
        try:
            exc = actor.exception
        except (OSError, ValueError, EOFError):
            continue
        if exc:
            errors.append(str(exc[1]) if len(exc) > 1 else repr(exc[0]))
    return errors


def main(jobdir: str) -> int:
    """Run the job in ``jobdir``; 0 when its results are written, 1 after an error was reported."""
    jobdir = Path(jobdir)
    watch_parent(jobdir)      # the parent dies (even by SIGKILL): its guardian stops this group, frees /dev/shm
    stage = Stage(jobdir / PROGRESS)
    t_start = time.perf_counter()
    try:
        stage.set("loading the job")
        job, net, x = read_job(jobdir)
        for path in job.get("sys_path", []):
            if path not in sys.path:
                sys.path.insert(0, path)
        stage.set("building the Lava graph")
        from neurosim.lava.builder import build_batched_graph, build_graph
        t0 = time.perf_counter()
        raw_current = bool(job.get("raw_current", False))
        common = dict(check=False,            # read_job checked the netlist for this mode
                      record=job.get("record"), record_dir=jobdir)
        if job.get("batch"):
            graph = build_batched_graph(net, job["mode"], int(job["steps"]), int(job["batch"]),
                                        readout_steps=job.get("readout_steps"), **common)
        else:
            graph = build_graph(net, job["mode"], int(job["steps"]), first_sample=x[0], raw_current=raw_current,
                                **common)
        if job.get("graph_hook"):
            mod, _, fn = job["graph_hook"].partition(":")
            getattr(importlib.import_module(mod), fn)(graph)
        t_build = time.perf_counter() - t0
        out = run_samples(graph, x, stage, progress=bool(job.get("progress", True)), raw_current=raw_current,
                          spike_samples=job.get("spike_samples"), offset=int(job.get("offset", 0)),
                          on_error=lambda exc: report_error(jobdir, exc, stage))
        timing, models = out.pop("timing"), out.pop("models")
        timing.update(build_s=t_build, import_s=t0 - t_start, total_s=time.perf_counter() - t_start)
        stage.set("writing the results")
        write_result(jobdir, out, timing, models)
        return 0
    except BaseException as exc:   # report everything, including KeyboardInterrupt
        report_error(jobdir, exc, stage)
        return 1


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush(), sys.stderr.flush()
    # Skip interpreter shutdown: it joins leftover (non-daemon) Lava processes, which hangs when
    # a runtime could not be stopped. The parent kills whatever is left of the process group.
    os._exit(code)
