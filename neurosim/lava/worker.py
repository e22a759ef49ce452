"""The child process of :func:`neurosim.lava.runner.run_lava`: ``python -m neurosim.lava.worker JOBDIR``.

It reads the job (:func:`neurosim.lava.jobs.read_job`: mode, steps, the netlist, checked as the
parent checked it, and the samples), builds the Lava graph, compiles it once and streams every
sample through it::

    for each sample: set the input bias, set every v to its vInit and u to 0, zero the synapse buffers,
                     run(RunSteps(T)), read the recorded spikes and v

and writes the results into the job folder. Progress goes there too (stage and sample) and, as a
tqdm bar, to stderr. On an error it reports it (message, sample, traceback) before stopping the
runtime; ``stop()`` always runs. When the parent dies, the worker stops its own process group
(:func:`neurosim.lava.lifetime.watch_parent`).
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
                raw_current: bool = False,
                on_error: Optional[Callable[[BaseException], None]] = None) -> dict:
    """Stream the samples ``x`` through ``graph`` in one compiled Lava run (in this process).

    ``x[k]`` is what :meth:`LavaGraph.set_sample` takes; sample 0 must already be in the graph
    (``build_graph(first_sample=x[0])``). Returns arrays ``spikes_<i>`` (N, T, n) bool,
    ``v_<i>`` (N, n) and ``counts_<i>`` (N, n) per recorded neuron layer ``i``, neurons in (C, H, W)
    order, v in state units, plus ``timing`` and ``models`` (the chosen ProcessModels).
    The runtime is always stopped; ``on_error(exc)`` is called before stopping it when a
    step fails (stopping a runtime whose ProcessModel raised can hang).
    """
    from lava.magma.core.run_conditions import RunSteps
    from tqdm.auto import tqdm

    from neurosim.lava.layout import from_lava, from_lava_steps
    from neurosim.lava.process import NetlistNeuron

    stage = stage or Stage()
    net, steps, fixed = graph.net, graph.steps, graph.mode == "fixed"
    layers = graph.neuron_layers
    recorded = graph.recorded_layers
    n_samples = len(x)
    sizes = {i: int(np.prod(net.layers[i].shape)) for i in layers}
    spikes = {i: np.zeros((n_samples, steps, sizes[i]), dtype=bool) for i in recorded}
    vs = {i: np.zeros((n_samples, sizes[i]), dtype=np.int64 if fixed else np.float64) for i in recorded}
    from neurosim.lava.builder import initial_v

    zeros = {i: np.zeros(graph.neurons[i].v.shape) for i in layers}
    v0 = {i: np.full(graph.neurons[i].v.shape, initial_v(net.layers[i].neuron, graph.mode)) for i in layers}
    run_cfg = graph.run_cfg()
    starter = graph.starter
    timing = {"compile_s": 0.0, "first_run_s": 0.0, "run_s": 0.0, "io_s": 0.0}
    try:
        stage.set("compiling the Lava graph (and starting its processes) for", sample=0)
        t = time.perf_counter()
        starter.create_runtime(run_cfg=run_cfg)    # compile once; every sample reuses it
        timing["compile_s"] = time.perf_counter() - t
        bar = tqdm(range(n_samples), desc=f"lava ({graph.tag}, T={steps})", unit="sample",
                   disable=not progress, file=sys.stderr, leave=False)
        for k in bar:
            t0 = time.perf_counter()
            if k > 0:       # sample 0 is in the initial values of the freshly built graph
                stage.set("resetting the state for", sample=k)
                graph.set_sample(x[k], raw_current)
                for i in layers:
                    proc = graph.neurons[i]
                    proc.v.set(v0[i])
                    proc.u.set(zeros[i])
                    if isinstance(proc, NetlistNeuron):
                        proc.t.set(np.zeros(1))          # the schedule's step counter
                for buf in graph.in_flight():            # synapse buffers and delay lines
                    buf.set(np.zeros(buf.shape))
            t1 = time.perf_counter()
            stage.set("running", sample=k)
            starter.run(condition=RunSteps(num_steps=steps, blocking=True))
            t2 = time.perf_counter()
            stage.set("reading the results of", sample=k)
            for i in recorded:
                spikes[i][k] = from_lava_steps(np.load(graph.spike_files[i], mmap_mode="r"))
                v = from_lava(graph.neurons[i].v.get())
                vs[i][k] = np.rint(v).astype(np.int64) if fixed else v
            t3 = time.perf_counter()
            timing["first_run_s" if k == 0 else "run_s"] += t2 - t1
            timing["io_s"] += (t1 - t0) + (t3 - t2)
            stage.done = k + 1
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
    out = {}
    for i in recorded:
        out[f"spikes_{i}"] = spikes[i]
        out[f"v_{i}"] = vs[i]
        out[f"counts_{i}"] = spikes[i].sum(1, dtype=np.int64)
    out["timing"] = timing
    out["models"] = {
        f"layer {i} {role}": f"{type(p).__name__} -> {getattr(p.model_class, '__name__', '?')}"
        for i in layers
        for role, p in (("neurons", graph.neurons[i]), ("sink", graph.sinks[i]),
                        *((f"synapse {k}", syn) for k, syn in enumerate(graph.synapses[i])))
        if p is not None}
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
    watch_parent(jobdir)      # the parent dies (even by SIGKILL): stop this group, free /dev/shm
    stage = Stage(jobdir / PROGRESS)
    t_start = time.perf_counter()
    try:
        stage.set("loading the job")
        job, net, x = read_job(jobdir)
        for path in job.get("sys_path", []):
            if path not in sys.path:
                sys.path.insert(0, path)
        stage.set("building the Lava graph")
        from neurosim.lava.builder import build_graph
        t0 = time.perf_counter()
        raw_current = bool(job.get("raw_current", False))
        graph = build_graph(net, job["mode"], int(job["steps"]), first_sample=x[0],
                            check=False,      # read_job checked the netlist for this mode
                            raw_current=raw_current, record=job.get("record"), record_dir=jobdir)
        if job.get("graph_hook"):
            mod, _, fn = job["graph_hook"].partition(":")
            getattr(importlib.import_module(mod), fn)(graph)
        t_build = time.perf_counter() - t0
        out = run_samples(graph, x, stage, progress=bool(job.get("progress", True)),
                          raw_current=raw_current, on_error=lambda exc: report_error(jobdir, exc, stage))
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
