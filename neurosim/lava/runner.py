"""Run a netlist on Lava's CPU simulator, guarded: the public entries :func:`run_lava` and
:func:`run_lava_modes` and their :class:`LavaResult`.

:func:`run_lava` streams all samples through ONE compiled Lava run in a child process
(``python -m neurosim.lava.worker JOBDIR``; the job folder: :mod:`neurosim.lava.jobs`): by
default the batched graph, ``batch`` samples per run of T steps
(:func:`neurosim.lava.builder.build_batched_graph`), or with ``batch=None`` the per-sample
graph of Lava's own processes (:func:`neurosim.lava.builder.build_graph`); ``workers`` children
share the batches, and :func:`run_lava_modes` runs several modes' children side by side. Each
child is started in its own session and process group (:mod:`neurosim.lava.supervisor`); the
parent watches them all: on an error reported by a worker, a crash, or when its time limit
(:func:`~neurosim.lava.timelimit.estimate_timeout`) passes, it kills every child's whole
process group (Lava's model processes included), removes the ``/dev/shm`` segments the killed
processes held (Lava's channels are multiprocessing shared memory, which a killed runtime never
unlinks) and raises :class:`~neurosim.errors.LavaRunError` naming what failed and the samples
it was on. A ProcessModel that raises (after which Lava's ``run()``/``stop()`` can hang)
therefore costs at most the time limit. SIGTERM and SIGHUP run the same clean-up, and every
worker stops when this process dies (:mod:`neurosim.lava.lifetime`).

Results use the simulator's conventions (:class:`neurosim.sim.simulator.SimResult`): per layer
index, ``spikes[i]`` (N, T, n) bool, ``v[i]`` (N, n) final voltage in state units (``<< 6``
in ``fixed`` mode) and ``counts[i]`` (N, n), neurons in (C, H, W)-flattened order; ``None``
for ``Flatten`` layers.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from neurosim.errors import LavaRunError, NeurosimError
from neurosim.lava import jobs
from neurosim.lava.layout import TAGS, check_input, check_netlist, check_readout_steps
from neurosim.lava.lifetime import terminate_raises
from neurosim.lava.supervisor import POLL_S, Supervised
from neurosim.lava.timelimit import estimate_timeout
from neurosim.netlist.schema import Netlist
from neurosim.progress import shown

__all__ = ["run_lava", "run_lava_modes", "LavaResult", "estimate_timeout", "DEFAULT_BATCH"]

PathLike = Union[str, os.PathLike]
#: Samples per Lava run of the batched graph. Lava's cost per step and process (~0.25 ms of
#: synchronisation) is shared by the batch; above ~64 the arithmetic dominates
#: (docs/benchmarks.md, "Whole test sets on Lava").
DEFAULT_BATCH = 64


class LavaResult:
    """Per-layer outputs of a Lava run (``None`` for ``Flatten`` layers), as ``SimResult``.

    ``spikes[i]`` (K, T, n) bool, ``v[i]`` (K, n) final voltage (state units), ``counts[i]``
    (K, n), ``step_counts[i]`` (T,) of the first K samples (``spike_samples`` of
    :func:`run_lava`, default all N); ``readout`` (N, n_out) = output-layer ``counts * vth + v``
    of every sample (as the simulator's, vth in state units in ``fixed`` mode);
    ``readout_trace`` (N, R, n_out): the same after each of ``readout_steps`` (R step counts,
    the last ``steps``): the readout a run of that many steps gives (a shorter run is a prefix).
    ``timing`` (seconds): import_s, build_s, compile_s (compile and start the runtime),
    first_run_s (the first unit: a sample, or a batch), run_s (the others), io_s (loading
    samples and reading results between runs), stop_s, total_s (worker), wall_s (parent,
    including the worker's start-up), per_step_s (run_s per step after the first unit),
    samples_per_s (N / wall_s).
    ``models``: "layer <i> <role>" -> "Process -> chosen ProcessModel".

    (A plain class: Lava's ProcessModel discovery executes this package's modules under bare
    names, where ``@dataclass`` fails.)
    """

    def __init__(self, steps: int, mode: str, spikes: list, v: list, counts: list,
                 readout_trace: np.ndarray, readout_steps: Sequence[int], timing: Optional[dict] = None,
                 models: Optional[dict] = None, batch: Optional[int] = None) -> None:
        self.steps, self.mode, self.batch = steps, mode, batch
        self.readout_steps: tuple[int, ...] = tuple(int(t) for t in readout_steps)
        self.spikes: list[Optional[np.ndarray]] = spikes
        self.v: list[Optional[np.ndarray]] = v
        self.counts: list[Optional[np.ndarray]] = counts
        self.step_counts: list[Optional[np.ndarray]] = [
            None if s is None else s.sum((0, 2), dtype=np.int64) for s in spikes]
        self.readout_trace = readout_trace
        self.readout = readout_trace[:, -1]
        self.timing = dict(timing or {})
        self.models = dict(models or {})

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class of every sample: the readout's argmax."""
        return np.argmax(self.readout, axis=1)

    def accuracy_at(self, labels: np.ndarray) -> dict[int, float]:
        """Accuracy had the run stopped after each of ``readout_steps``, as ``{T: accuracy}``
        (as :meth:`neurosim.sim.simulator.SimResult.accuracy_at`)."""
        hits = np.argmax(self.readout_trace, axis=2) == np.asarray(labels)[:, None]
        return {t: float(a) for t, a in zip(self.readout_steps, hits.mean(0))}


def run_lava(net: Union[Netlist, PathLike], x: np.ndarray, steps: int, mode: str = "fixed",
             timeout: Optional[float] = None, progress: bool = True, raw_current: bool = False,
             record: Optional[Sequence[int]] = None, graph_hook: Optional[str] = None,
             sys_path: Sequence[str] = (), batch: Optional[int] = DEFAULT_BATCH,
             spike_samples: Optional[int] = None, workers: int = 1,
             readout_steps: Optional[Sequence[int]] = None) -> LavaResult:
    """Run every sample of ``x`` for ``steps`` steps through ``net`` on Lava's CPU simulator.

    ``net`` is a :class:`Netlist` or the path of a netlist file; ``mode`` is ``'fixed'``
    (``Loihi2SimCfg(select_tag='fixed_pt')``) or ``'float'`` (``'floating_pt'``). As
    :meth:`neurosim.sim.simulator.Simulator.run`: a net with an ``input`` layer takes ``x``
    (N, *input_shape) as the constant current ``weight * x + bias`` (``raw_current``: ``x`` is
    that current); a net without one takes 0/1 spikes (N, steps, *input_shape).
    Every sample starts from zero state (v at vInit; u, the synapses' buffers and delay lines
    empty).
    ``batch``: samples per Lava run (the batched graph, at most N / workers); ``None``: the per-sample
    graph of Lava's own ``LIF``, ``Dense`` and ``Conv`` (what Loihi 2 compiles), one sample per
    run, with ``Var.set``/``Var.get`` (~17 us per value) between samples.
    ``workers``: worker processes sharing the samples (consecutive runs each).
    ``record``: the neuron layers whose spikes, counts and v are read (default: all; the
    output layer always); others come back as ``None``. ``spike_samples``: only the first so
    many samples' spikes, counts and v come back (default: all); ``readout`` covers every sample.
    ``readout_steps``: step counts up to ``steps`` whose readout the same run also gives
    (``readout_trace``; a run of T steps compiled once answers every shorter T; the batched
    graph only).
    ``timeout`` (s) limits each worker (default: :func:`estimate_timeout`, scaled by the
    workers per core).
    ``graph_hook`` (``'module:function'``, importable in the worker with ``sys_path``
    prepended) is called with the built graph (:mod:`neurosim.lava.builder`) before
    compiling, e.g. to attach extra processes (register their models in
    ``graph.model_overrides``).
    Raises :class:`LavaRunError` when Lava fails or the time limit passes (the workers' process
    groups are killed, their shared memory removed; the error's ``worker_pid`` is the failed
    worker's group id), :class:`NeurosimError` for a netlist or input the backend cannot run.
    """
    return run_lava_modes(net, x, steps, (mode,), timeout=timeout, progress=progress, raw_current=raw_current,
                          record=record, graph_hook=graph_hook, sys_path=sys_path, batch=batch,
                          spike_samples=spike_samples, workers=workers, readout_steps=readout_steps)[mode]


def run_lava_modes(net: Union[Netlist, PathLike], x: np.ndarray, steps: int, modes: Sequence[str],
                   *, timeout: Optional[float] = None, progress: bool = True, raw_current: bool = False,
                   record: Optional[Sequence[int]] = None, graph_hook: Optional[str] = None,
                   sys_path: Sequence[str] = (), batch: Optional[int] = DEFAULT_BATCH,
                   spike_samples: Optional[int] = None, workers: int = 1,
                   readout_steps: Optional[Sequence[int]] = None) -> dict[str, LavaResult]:
    """:func:`run_lava` in every mode of ``modes`` at once (``workers`` worker processes per
    mode, all supervised together, one progress bar); returns mode -> :class:`LavaResult`."""
    from neurosim.netlist.hdf5 import load

    netlist_path = None
    if not isinstance(net, Netlist):
        netlist_path = Path(net).resolve()
        net = load(netlist_path)
    modes = list(dict.fromkeys(modes))
    if not modes:
        raise NeurosimError("no Lava mode to run")
    x = np.asarray(x, dtype=np.float64)
    for mode in modes:
        check_netlist(net, mode)
        check_input(net, x, steps, mode, raw_current)
    if record is not None:
        record = sorted({int(i) for i in record} | {net.output_layer})
        bad = [i for i in record if i not in net.neuron_layers]
        if bad:
            raise NeurosimError(f"record: layers {bad} are not neuron layers {net.neuron_layers}")
    if batch is not None and (isinstance(batch, bool) or int(batch) < 1):
        raise NeurosimError(f"batch must be a number of samples >= 1 (or None: one sample per run), got {batch!r}")
    if isinstance(workers, bool) or int(workers) < 1:
        raise NeurosimError(f"workers must be a number >= 1, got {workers!r}")
    if spike_samples is not None and int(spike_samples) < 0:
        raise NeurosimError(f"spike_samples must be >= 0, got {spike_samples}")
    readout_steps = check_readout_steps((steps,) if readout_steps is None else readout_steps, steps)
    if batch is None and readout_steps != (steps,):
        raise NeurosimError(f"readout_steps {list(readout_steps)} need the batched graph: the per-sample graph "
                            f"(batch=None) reads the readout after the last step only")
    batch = None if batch is None else min(int(batch), -(-len(x) // int(workers)))   # every worker has a share
    keep = len(x) if spike_samples is None else min(int(spike_samples), len(x))
    shares = _shares(len(x), batch or 1, int(workers))
    crowding = max(1.0, len(modes) * len(shares) / (os.cpu_count() or 1))
    runs: list[_Run] = []
    try:
        for mode in modes:
            for share in shares:
                n = share.stop - share.start
                limit = timeout if timeout is not None else crowding * estimate_timeout(net, n, steps, record, batch)
                run = _Run(Path(tempfile.mkdtemp(prefix="neurosim-lava-")), mode, share, limit)
                runs.append(run)
                jobs.write_job(run.jobdir, net, x[share], mode=mode, steps=steps, raw_current=raw_current,
                               record=record, graph_hook=graph_hook, sys_path=sys_path, netlist_path=netlist_path,
                               batch=min(batch, n) if batch else 0,
                               spike_samples=min(n, max(0, keep - share.start)), offset=share.start,
                               readout_steps=readout_steps)
        tags = "+".join(TAGS[m] for m in modes)
        t0 = time.perf_counter()
        _supervise(runs, len(x), progress, f"lava ({tags}, T={steps})", several_modes=len(modes) > 1)
        wall = time.perf_counter() - t0
        return {mode: _result([r for r in runs if r.mode == mode], net, mode, steps, len(x), wall, batch,
                              readout_steps) for mode in modes}
    finally:
        for run in runs:
            shutil.rmtree(run.jobdir, ignore_errors=True)


def _shares(n: int, unit: int, workers: int) -> list[slice]:
    """The samples ``0 .. n-1`` cut into at most ``workers`` consecutive shares of whole units
    (runs of ``unit`` samples), as even as the units allow."""
    units = -(-n // unit)
    per = -(-units // min(workers, units))
    return [slice(k * unit, min(n, (k + per) * unit)) for k in range(0, units, per)]


class _Run:
    """One supervised worker: its job folder, mode, share of the samples and time limit."""

    def __init__(self, jobdir: Path, mode: str, share: slice, timeout: float) -> None:
        self.jobdir, self.mode, self.share, self.timeout = jobdir, mode, share, timeout
        self.worker: Optional[Supervised] = None
        #: How its watch ended (:meth:`Supervised.watch`), ``None`` while it is watched.
        self.ending: Optional[str] = None
        self.removed = 0

    def start(self) -> None:
        argv, env = jobs.worker_command(self.jobdir)
        self.worker = Supervised(argv, env, self.jobdir / jobs.LOG)

    def watch(self) -> None:
        """Watch the worker until it ends (run in a thread)."""
        self.ending = self.worker.watch(self.timeout, lambda: jobs.reported(self.jobdir))

    def done(self) -> int:
        return int(jobs.read_progress(self.jobdir).get("done", 0))

    def failure(self, n_samples: int) -> Optional[str]:
        """What went wrong once its watch ended (see :func:`neurosim.lava.jobs.failure`), or None."""
        return jobs.failure(self.jobdir, self.ending, self.worker.returncode, n_samples, self.timeout)


def _supervise(runs: list[_Run], n_samples: int, progress: bool, desc: str, several_modes: bool) -> None:
    """Start every worker, watch them together with one progress bar; return when all have
    succeeded, else, at the first failure, stop all and raise :class:`LavaRunError` for it.
    Every worker's process group is always stopped (its leaked shared memory removed)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=n_samples * len({r.mode for r in runs}), desc=desc, unit="sample",
               disable=not shown(progress), leave=False)
    restore_signals = terminate_raises()  # SIGTERM/SIGHUP -> Terminated: the clean-up below runs

    def first_failure() -> Optional[tuple[_Run, str]]:
        return next(((run, why) for run in runs if run.ending is not None
                     for why in [run.failure(n_samples)] if why is not None), None)

    failed: Optional[tuple[_Run, str]] = None
    try:
        for run in runs:
            run.start()
        threads = [threading.Thread(target=run.watch, daemon=True) for run in runs]
        for thread in threads:
            thread.start()
        while failed is None and any(thread.is_alive() for thread in threads):
            time.sleep(POLL_S)
            bar.update(sum(run.done() for run in runs) - bar.n)
            failed = first_failure()
        failed = failed or first_failure()
    finally:                              # always (KeyboardInterrupt, Terminated too): kill what is left
        for run in runs:
            if run.worker is not None:
                run.removed = run.worker.stop()
        restore_signals()
        bar.close()
    if failed is None:
        return
    run, failure = failed
    if several_modes:
        failure = f"{TAGS[run.mode]}: {failure}"
    if run.removed:
        failure += f"; removed {run.removed} leaked /dev/shm segment(s)"
    tail = jobs.log_tail(run.jobdir)
    if tail:
        failure += "\n--- worker output (tail) ---\n" + tail
    error = LavaRunError(failure)
    error.worker_pid = run.worker.pgid
    raise error


def _result(runs: list[_Run], net: Netlist, mode: str, steps: int, n: int, wall: float,
            batch: Optional[int], readout_steps: tuple[int, ...]) -> LavaResult:
    """The :class:`LavaResult` of one mode's finished workers, their samples in order (``wall``:
    the parent's seconds). ``timing`` holds each key's largest value over the workers (the
    critical path) and ``workers``."""
    parts = [jobs.read_result(run.jobdir, net) for run in runs]

    def joined(k: int) -> list[Optional[np.ndarray]]:
        return [None if parts[0][k][i] is None else np.concatenate([p[k][i] for p in parts])
                for i in range(len(net.layers))]

    out_counts = np.concatenate([p[3][0] for p in parts])
    out_v = np.concatenate([p[3][1] for p in parts])
    vth = net.layers[net.output_layer].neuron.vThMant
    vth = (int(vth) << 6) if mode == "fixed" else float(vth)
    timing: dict = {}
    for run, part in zip(runs, parts):
        t = dict(part[4].get("timing", {}))
        units = -(-(run.share.stop - run.share.start) // (batch or 1))
        if units > 1 and "run_s" in t:
            t["per_step_s"] = t["run_s"] / ((units - 1) * steps)
        for key, value in t.items():
            timing[key] = max(timing.get(key, value), value)
    timing.update(wall_s=wall, samples_per_s=n / wall, workers=len(runs))
    return LavaResult(steps=steps, mode=mode, spikes=joined(0), v=joined(1), counts=joined(2),
                      readout_trace=out_counts * vth + out_v, readout_steps=readout_steps, timing=timing,
                      models=parts[0][4].get("models", {}), batch=batch)
