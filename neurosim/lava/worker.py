"""The child process of :func:`neurosim.lava.runner.run_lava`: ``python -m neurosim.lava.worker JOBDIR``.

It reads ``JOBDIR/job.json`` (mode, steps, netlist) and ``JOBDIR/x.npz``, builds the Lava graph,
compiles it once and streams every sample through it::

    for each sample: set the input bias, set every v to its vInit and u to 0, zero the synapse buffers,
                     run(RunSteps(T)), read the recorded spikes and v

and writes ``JOBDIR/result.npz`` atomically. Progress goes to ``JOBDIR/progress`` (the index of
the sample being run) and, as a tqdm bar, to stderr. On an error it writes ``JOBDIR/error.json``
(message, sample, traceback) before stopping the runtime; ``stop()`` always runs.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import numpy as np

#: Files of a job directory.
JOB, INPUT, NET_ARRAYS, RESULT, ERROR, PROGRESS, INFO, LOG = (
    "job.json", "x.npz", "net_arrays.npz", "result.npz", "error.json", "progress.json",
    "info.json", "worker.log")


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, obj: object) -> None:
    _write_atomic(path, lambda p: p.write_text(json.dumps(obj)))


class _Stage:
    """Where the worker is (for progress and error messages), mirrored to a JSON file."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path, self.what, self.sample, self.done = path, "starting", None, 0

    def set(self, what: str, sample: Optional[int] = None, done: Optional[int] = None) -> None:
        self.what = what
        if sample is not None:
            self.sample = sample
        if done is not None:
            self.done = done
        if self.path is not None:
            _write_json(self.path, {"stage": self.what, "sample": self.sample, "done": self.done})


def run_samples(graph, x: np.ndarray, stage: Optional[_Stage] = None, progress: bool = True,
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

    stage = stage or _Stage()
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
                    for syn in graph.synapses[i]:
                        buf = syn.a_buff if hasattr(syn, "a_buff") else syn.a_buf
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


def _load_job(jobdir: Path):
    from neurosim.lava.netcodec import decode_net
    from neurosim.netlist.hdf5 import load

    job = json.loads((jobdir / JOB).read_text())
    if job.get("netlist_path"):
        net = load(job["netlist_path"])
    else:
        with np.load(jobdir / NET_ARRAYS, allow_pickle=False) as arrays:
            net = decode_net(job["net"], {k: arrays[k] for k in arrays.files})
    with np.load(jobdir / INPUT, allow_pickle=False) as f:
        x = f["x"]
    return job, net, x


def main(jobdir: str) -> int:
    from neurosim.lava.lifetime import watch_parent

    jobdir = Path(jobdir)
    watch_parent(jobdir)      # the parent dies (even by SIGKILL): stop this group, free /dev/shm
    stage = _Stage(jobdir / PROGRESS)
    t_start = time.perf_counter()
    try:
        stage.set("loading the job")
        job, net, x = _load_job(jobdir)
        for path in job.get("sys_path", []):
            if path not in sys.path:
                sys.path.insert(0, path)
        stage.set("building the Lava graph")
        from neurosim.lava.builder import build_graph
        t0 = time.perf_counter()
        raw_current = bool(job.get("raw_current", False))
        graph = build_graph(net, job["mode"], int(job["steps"]), first_sample=x[0],
                            check=bool(job.get("check", False)), raw_current=raw_current,
                            record=job.get("record"), record_dir=jobdir)
        if job.get("graph_hook"):
            import importlib
            mod, _, fn = job["graph_hook"].partition(":")
            getattr(importlib.import_module(mod), fn)(graph)
        t_build = time.perf_counter() - t0
        out = run_samples(graph, x, stage, progress=bool(job.get("progress", True)),
                          raw_current=raw_current, on_error=lambda exc: _report(jobdir, exc, stage))
        timing, models = out.pop("timing"), out.pop("models")
        timing.update(build_s=t_build, import_s=t0 - t_start, total_s=time.perf_counter() - t_start)
        stage.set("writing the results")
        _write_json(jobdir / INFO, {"timing": timing, "models": models})
        _write_atomic(jobdir / RESULT, lambda p: _savez(p, out))
        return 0
    except BaseException as exc:   # report everything, including KeyboardInterrupt
        if not (jobdir / ERROR).exists():
            _report(jobdir, exc, stage)
        return 1


def _report(jobdir: Path, exc: BaseException, stage: _Stage) -> None:
    process_errors = list(getattr(exc, "lava_process_errors", []))
    message = f"{type(exc).__name__}: {exc}".strip()
    if process_errors:   # the ProcessModel's own exception: the last line of its traceback
        message += " -- in a Lava process: " + process_errors[0].strip().splitlines()[-1]
    _write_json(jobdir / ERROR, {
        "message": message,
        "process_errors": process_errors,
        "stage": stage.what,
        "sample": stage.sample,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    })


def _savez(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush(), sys.stderr.flush()
    # Skip interpreter shutdown: it joins leftover (non-daemon) Lava processes, which hangs when
    # a runtime could not be stopped. The parent kills whatever is left of the process group.
    os._exit(code)
