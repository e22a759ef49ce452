"""Run a netlist on Lava's CPU simulator, guarded: the public entry :func:`run_lava` and its
:class:`LavaResult`.

:func:`run_lava` streams all samples through ONE compiled Lava run in a child process
(``python -m neurosim.lava.worker JOBDIR``; the job folder: :mod:`neurosim.lava.jobs`) started
in its own session and process group (:mod:`neurosim.lava.supervisor`). The parent watches it:
on an error reported by the worker, a crash, or when the time limit
(:func:`~neurosim.lava.timelimit.estimate_timeout`) passes, it kills the child's whole process
group (Lava's model processes included), removes the ``/dev/shm`` segments the killed
processes held (Lava's channels are multiprocessing shared memory, which a killed runtime never
unlinks) and raises :class:`~neurosim.errors.LavaRunError` naming what failed and the sample it
was on. A ProcessModel that raises (after which Lava's ``run()``/``stop()`` can hang) therefore
costs at most the time limit. SIGTERM and SIGHUP run the same clean-up, and the worker stops
when this process dies (:mod:`neurosim.lava.lifetime`).

Results use the simulator's conventions (:class:`neurosim.sim.simulator.SimResult`): per layer
index, ``spikes[i]`` (N, T, n) bool, ``v[i]`` (N, n) final voltage in state units (``<< 6``
in ``fixed`` mode) and ``counts[i]`` (N, n), neurons in (C, H, W)-flattened order; ``None``
for ``Flatten`` layers.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from neurosim.errors import LavaRunError, NeurosimError
from neurosim.lava import jobs
from neurosim.lava.layout import TAGS, check_input, check_netlist
from neurosim.lava.lifetime import terminate_raises
from neurosim.lava.supervisor import Supervised
from neurosim.lava.timelimit import estimate_timeout
from neurosim.netlist.schema import Netlist
from neurosim.progress import shown

__all__ = ["run_lava", "LavaResult", "estimate_timeout"]

PathLike = Union[str, os.PathLike]


class LavaResult:
    """Per-layer outputs of a Lava run (``None`` for ``Flatten`` layers), as ``SimResult``.

    ``spikes[i]`` (N, T, n) bool, ``v[i]`` (N, n) final voltage (state units), ``counts[i]``
    (N, n), ``step_counts[i]`` (T,); ``readout`` = output-layer ``counts * vth + v`` (as the
    simulator's, vth in state units in ``fixed`` mode).
    ``timing`` (seconds): import_s, build_s, compile_s (compile and start the runtime),
    first_run_s (sample 0), run_s (the other samples), io_s (Var set/get between samples),
    stop_s, total_s (worker), wall_s (parent, including the worker's start-up),
    per_step_s (run_s per step after sample 0).
    ``models``: "layer <i> <role>" -> "Process -> chosen ProcessModel".

    (A plain class: Lava's ProcessModel discovery executes this package's modules under bare
    names, where ``@dataclass`` fails.)
    """

    def __init__(self, steps: int, mode: str, spikes: list, v: list, counts: list,
                 readout: np.ndarray, timing: Optional[dict] = None,
                 models: Optional[dict] = None) -> None:
        self.steps, self.mode = steps, mode
        self.spikes: list[Optional[np.ndarray]] = spikes
        self.v: list[Optional[np.ndarray]] = v
        self.counts: list[Optional[np.ndarray]] = counts
        self.step_counts: list[Optional[np.ndarray]] = [
            None if s is None else s.sum((0, 2), dtype=np.int64) for s in spikes]
        self.readout = readout
        self.timing = dict(timing or {})
        self.models = dict(models or {})

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class of every sample: the readout's argmax."""
        return np.argmax(self.readout, axis=1)


def run_lava(net: Union[Netlist, PathLike], x: np.ndarray, steps: int, mode: str = "fixed",
             timeout: Optional[float] = None, progress: bool = True, raw_current: bool = False,
             record: Optional[Sequence[int]] = None, graph_hook: Optional[str] = None,
             sys_path: Sequence[str] = ()) -> LavaResult:
    """Run every sample of ``x`` for ``steps`` steps through ``net`` on Lava's CPU simulator.

    ``net`` is a :class:`Netlist` or the path of a netlist file; ``mode`` is ``'fixed'``
    (``Loihi2SimCfg(select_tag='fixed_pt')``) or ``'float'`` (``'floating_pt'``). As
    :meth:`neurosim.sim.simulator.Simulator.run`: a net with an ``input`` layer takes ``x``
    (N, *input_shape) as the constant current ``weight * x + bias`` (``raw_current``: ``x`` is
    that current); a net without one takes 0/1 spikes (N, steps, *input_shape).
    Every sample starts from zero state (v, u and the synapses' buffers are reset).
    ``record``: the neuron layers whose spikes, counts and v are read (default: all; the
    output layer always). Reading is Lava's slow part (``Var.get`` sends values one by one,
    ~17 us each, n * T values per layer and sample); others come back as ``None``.
    ``timeout`` (s) limits the whole run (default: :func:`estimate_timeout`).
    ``graph_hook`` (``'module:function'``, importable in the worker with ``sys_path``
    prepended) is called with the built :class:`~neurosim.lava.builder.LavaGraph` before
    compiling, e.g. to attach extra processes (register their models in
    ``graph.model_overrides``).
    Raises :class:`LavaRunError` when Lava fails or the time limit passes (the worker's
    process group is killed, its shared memory removed; the error's ``worker_pid`` is the
    group's id), :class:`NeurosimError` for a netlist or input the backend cannot run.
    """
    from neurosim.netlist.hdf5 import load

    netlist_path = None
    if not isinstance(net, Netlist):
        netlist_path = Path(net).resolve()
        net = load(netlist_path)
    check_netlist(net, mode)
    x = np.asarray(x, dtype=np.float64)
    check_input(net, x, steps, mode, raw_current)
    if record is not None:
        record = sorted({int(i) for i in record} | {net.output_layer})
        bad = [i for i in record if i not in net.neuron_layers]
        if bad:
            raise NeurosimError(f"record: layers {bad} are not neuron layers {net.neuron_layers}")
    if timeout is None:
        timeout = estimate_timeout(net, len(x), steps, record)

    jobdir = Path(tempfile.mkdtemp(prefix="neurosim-lava-"))
    try:
        jobs.write_job(jobdir, net, x, mode=mode, steps=steps, raw_current=raw_current, record=record,
                       graph_hook=graph_hook, sys_path=sys_path, netlist_path=netlist_path)
        t0 = time.perf_counter()
        _run_worker(jobdir, len(x), timeout, progress, TAGS[mode], steps)
        wall = time.perf_counter() - t0
        return _result(jobdir, net, mode, steps, len(x), wall)
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)


def _run_worker(jobdir: Path, n_samples: int, timeout: float, progress: bool, tag: str, steps: int) -> None:
    """Run the worker on ``jobdir`` under supervision, with a progress bar; return when it
    succeeded, else raise :class:`LavaRunError`. Its process group is always stopped."""
    from tqdm.auto import tqdm

    argv, env = jobs.worker_command(jobdir)
    worker = Supervised(argv, env, jobdir / jobs.LOG)
    bar = tqdm(total=n_samples, desc=f"lava ({tag}, T={steps})", unit="sample",
               disable=not shown(progress), leave=False)

    def poll() -> bool:
        done = int(jobs.read_progress(jobdir).get("done", 0))
        if done > bar.n:
            bar.update(done - bar.n)
        return jobs.reported(jobdir)

    restore_signals = terminate_raises()  # SIGTERM/SIGHUP -> Terminated: the clean-up below runs
    try:
        ending = worker.watch(timeout, poll)
        removed = worker.stop()           # always: kill what is left, remove the leaked shm
    except BaseException:                 # KeyboardInterrupt, Terminated etc.: clean up, re-raise
        worker.stop()
        raise
    finally:
        restore_signals()
        bar.close()
    failure = jobs.failure(jobdir, ending, worker.returncode, n_samples, timeout)
    if failure is None:
        return
    if removed:
        failure += f"; removed {removed} leaked /dev/shm segment(s)"
    tail = jobs.log_tail(jobdir)
    if tail:
        failure += "\n--- worker output (tail) ---\n" + tail
    error = LavaRunError(failure)
    error.worker_pid = worker.pgid
    raise error


def _result(jobdir: Path, net: Netlist, mode: str, steps: int, n: int, wall: float) -> LavaResult:
    """The :class:`LavaResult` of a finished job (``wall``: the parent's seconds)."""
    spikes, vs, counts, info = jobs.read_result(jobdir, net)
    out = net.output_layer
    vth = net.layers[out].neuron.vThMant
    vth = (int(vth) << 6) if mode == "fixed" else float(vth)
    readout = counts[out] * vth + vs[out]
    timing = dict(info.get("timing", {}))
    timing["wall_s"] = wall
    if n > 1 and "run_s" in timing:
        timing["per_step_s"] = timing["run_s"] / ((n - 1) * steps)
    return LavaResult(steps=steps, mode=mode, spikes=spikes, v=vs, counts=counts, readout=readout,
                      timing=timing, models=info.get("models", {}))
