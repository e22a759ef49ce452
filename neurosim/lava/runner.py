"""Run a netlist on Lava's CPU simulator, guarded: a child process, a watchdog, a clean-up.

:func:`run_lava` streams all samples through ONE compiled Lava run in a child process
(``python -m neurosim.lava.worker JOBDIR``, its own session and process group). The parent
watches it: on an error reported by the worker, a crash, or when the time limit passes, it
kills the child's whole process group (Lava's model processes included), removes the
``/dev/shm`` segments the killed processes held (Lava's channels are multiprocessing shared
memory, which a killed runtime never unlinks) and raises :class:`~neurosim.errors.LavaRunError`
naming what failed and the sample it was on. A ProcessModel that raises (after which Lava's
``run()``/``stop()`` can hang) therefore costs at most the time limit.

Results use the simulator's conventions (:class:`neurosim.sim.simulator.SimResult`): per layer
index, ``spikes[i]`` (N, T, n) bool, ``v[i]`` (N, n) final voltage in state units (``<< 6``
in ``fixed`` mode) and ``counts[i]`` (N, n), neurons in (C, H, W)-flattened order; ``None``
for ``Flatten`` layers.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

import neurosim
from neurosim.errors import LavaRunError, NeurosimError
from neurosim.lava import worker as W
from neurosim.lava.layout import TAGS, check_input, check_netlist
from neurosim.lava.netcodec import encode_net
from neurosim.lava.synapses import lava_step_cost
from neurosim.netlist.schema import Flatten, Netlist, Population
from neurosim.progress import shown

PathLike = Union[str, os.PathLike]

#: Time-limit estimate (seconds): start-up (imports, compile, runtime start) + per-step costs.
STARTUP_S = 10.0
STEP_PER_PROCESS_S = 2e-3      # one Lava time step, per process of the graph
CONV2D_S = 1e-4                # one convolve2d call of Lava's Conv model (per channel pair)
NEURON_STEP_S = 1e-6           # one neuron (or synapse output) updated in one step
VALUE_IO_S = 1e-4              # one value set or read between samples (Lava sends values one by one)
TIMEOUT_FACTOR = 5.0           # safety margin on the per-step estimate (loaded machines)
TIMEOUT_MARGIN_S = 60.0
#: After the worker reported an error, how long it may take to stop Lava and exit.
ERROR_GRACE_S = 3.0
POLL_S = 0.05
SHM_DIR = Path("/dev/shm")


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
        return np.argmax(self.readout, axis=1)


def estimate_timeout(net: Netlist, n_samples: int, steps: int,
                     record: Optional[Sequence[int]] = None) -> float:
    """A generous wall-time limit (s) for :func:`run_lava` on ``n_samples`` samples.

    Per step: every process, every 2-D convolution Lava's Conv model makes (one
    ``scipy.signal.convolve2d`` per output/input channel pair) and the neuron arithmetic;
    per sample: every value set or read between samples (state resets, final voltages);
    recorded spikes come through files and cost no value transfers.
    Measured on the tests' nets (2 cores): ~0.25 ms per process-step, ~17 us per value.
    """
    pops = [i for i, l in enumerate(net.layers) if isinstance(l, Population)]
    n_procs = 1 + 2 * len(net.neuron_layers) + sum(len(net.layers[i].projections) for i in pops)
    neurons = sum(int(np.prod(l.shape)) for l in net.layers if not isinstance(l, Flatten))
    convs = sum(lava_step_cost(proj.synapse, net.in_shape(i, p)) for i in pops
                for p, proj in enumerate(net.layers[i].projections))
    per_step = n_procs * STEP_PER_PROCESS_S + convs * CONV2D_S + neurons * NEURON_STEP_S
    read = sum(int(np.prod(net.layers[i].shape)) for i in net.neuron_layers if record is None or i in record)
    values = neurons * 5 + read + (0 if net.has_input_layer else int(np.prod(net.input_shape)) * steps)
    per_sample = steps * per_step + values * VALUE_IO_S
    return STARTUP_S + TIMEOUT_MARGIN_S + TIMEOUT_FACTOR * n_samples * per_sample


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
        job = {"mode": mode, "steps": int(steps), "progress": False, "raw_current": bool(raw_current),
               "record": record,
               "graph_hook": graph_hook, "sys_path": [str(p) for p in sys_path]}
        if netlist_path is not None:
            job["netlist_path"] = str(netlist_path)
        else:
            job["net"], arrays = encode_net(net)
            with open(jobdir / W.NET_ARRAYS, "wb") as f:
                np.savez(f, **arrays)
        with open(jobdir / W.INPUT, "wb") as f:
            np.savez(f, x=x)
        (jobdir / W.JOB).write_text(json.dumps(job))
        t0 = time.perf_counter()
        _run_guarded(jobdir, len(x), timeout, progress, TAGS[mode], steps)
        wall = time.perf_counter() - t0
        return _read_result(jobdir, net, mode, steps, len(x), wall)
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)


# ----------------------------------------------------------------------------- the guard

def _run_guarded(jobdir: Path, n_samples: int, timeout: float, progress: bool, tag: str,
                 steps: int) -> None:
    """Run the worker on ``jobdir``; return when it succeeded, else clean up and raise."""
    from tqdm.auto import tqdm

    from neurosim.lava.lifetime import PARENT_ENV, terminate_raises

    shm_before = shm_snapshot()
    env = dict(os.environ)
    root = str(Path(neurosim.__file__).resolve().parent.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([root] + paths)     # the worker imports this neurosim
    env[PARENT_ENV] = str(os.getpid())    # the worker stops its group when this process dies
    failure: Optional[str] = None
    with open(jobdir / W.LOG, "wb") as log:
        child = subprocess.Popen([sys.executable, "-m", "neurosim.lava.worker", str(jobdir)],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True)
    pgid = child.pid                      # start_new_session: the child leads its own group
    t0 = time.monotonic()
    error_seen: Optional[float] = None    # when error.json appeared
    result_seen: Optional[float] = None   # when result.npz appeared (written last, atomically)
    bar = tqdm(total=n_samples, desc=f"lava ({tag}, T={steps})", unit="sample",
               disable=not shown(progress), leave=False)
    restore_signals = terminate_raises()  # SIGTERM/SIGHUP -> Terminated: the clean-up below runs
    try:
        while True:
            code = child.poll()
            state = _read_json(jobdir / W.PROGRESS) or {}
            done = int(state.get("done", 0))
            if done > bar.n:
                bar.update(done - bar.n)
            if code is not None:
                if code == 0 and (jobdir / W.RESULT).exists():
                    break
                failure = _describe_failure(jobdir, code, n_samples)
                break
            now = time.monotonic()
            if error_seen is None and (jobdir / W.ERROR).exists():
                error_seen = now
            if result_seen is None and (jobdir / W.RESULT).exists():
                result_seen = now
            if error_seen is not None and now - error_seen > ERROR_GRACE_S:
                failure = (_describe_failure(jobdir, None, n_samples)
                           + f" (the Lava runtime did not stop within {ERROR_GRACE_S:g} s; killed)")
                break
            if result_seen is not None and now - result_seen > ERROR_GRACE_S:
                break                     # results complete, the worker hangs on exit: kill it
            if now - t0 > timeout:
                failure = (f"Lava run timed out after {timeout:g} s{_where(state, n_samples)}; the worker and "
                           "its processes were killed (allow more time: --lava-timeout SECONDS, timeout= in Python)")
                break
            time.sleep(POLL_S)
        # Always: kill what is left of the group (a successful worker leaves nothing, or
        # zombies), and remove the shared memory the killed processes held.
        removed = stop_group(child, shm_before)
    except BaseException:                 # KeyboardInterrupt, SIGTERM etc.: clean up, re-raise
        stop_group(child, shm_before)
        raise
    finally:
        restore_signals()
        bar.close()
    if failure is not None:
        if removed:
            failure += f"; removed {removed} leaked /dev/shm segment(s)"
        tail = _log_tail(jobdir)
        if tail:
            failure += "\n--- worker output (tail) ---\n" + tail
        error = LavaRunError(failure)
        error.worker_pid = pgid
        raise error


def _where(state: dict, n_samples: int) -> str:
    if "sample" not in state or state["sample"] is None:
        return " while starting"
    return f" while {state.get('stage', 'running')} sample {int(state['sample'])} of {n_samples}"


def _describe_failure(jobdir: Path, code: Optional[int], n_samples: int) -> str:
    err = _read_json(jobdir / W.ERROR)
    if err:
        where = _where({"sample": err.get("sample"), "stage": err.get("stage")}, n_samples)
        if err.get("sample") is None:
            where = f" while {err.get('stage', 'starting')}"
        msg = f"Lava run failed{where}: {err.get('message', '?')}"
        cause = _innermost_cause(_log_text(jobdir)) or _innermost_cause(err.get("traceback", ""))
        if cause and cause not in msg:
            msg += f" [{cause}]"
        return msg
    state = _read_json(jobdir / W.PROGRESS) or {}
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    return f"the Lava worker {how}{_where(state, n_samples)} without reporting a result"


def _innermost_cause(tb: str) -> str:
    """The first 'SomeError: ...' line of a log or traceback: with Lava, the exception a
    ProcessModel raised is printed by its process, and run() only raises "N Exception(s)
    occurred. See output above for details." """
    lines = [l.strip() for l in tb.splitlines() if l.strip()]
    causes = [l for l in lines if not l.startswith(("File ", "Traceback", "^", "~"))
              and ":" in l and l.split(":", 1)[0].replace(".", "").isidentifier()
              and l.split(":", 1)[0].endswith(("Error", "Exception"))]
    return causes[0] if causes else ""


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _log_text(jobdir: Path) -> str:
    try:
        text = (jobdir / W.LOG).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(l.rsplit("\r", 1)[-1] for l in text.splitlines())   # drop progress redraws


def _log_tail(jobdir: Path, lines: int = 20) -> str:
    return "\n".join(_log_text(jobdir).strip().splitlines()[-lines:])


def _group_members(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()   # after "pid (comm) "
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _mapped_shm(pids: Sequence[int]) -> set[str]:
    """Names of /dev/shm files mapped by ``pids``."""
    names = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for line in maps.splitlines():
            i = line.find(str(SHM_DIR) + "/")
            if i >= 0:
                names.add(line[i + len(str(SHM_DIR)) + 1:].split(" (deleted)")[0])
    return names


def _kill_group(pgid: int, child: subprocess.Popen) -> set[str]:
    """SIGKILL every process of the group ``pgid``; return the /dev/shm names they held."""
    held: set[str] = set()
    for _ in range(50):
        members = _group_members(pgid)
        held |= _mapped_shm(members)
        if not members:
            break
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            break
        except PermissionError:
            break
        time.sleep(0.05)
        if child.poll() is None:
            try:
                child.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
    try:
        child.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        pass
    return held


def stop_group(child: subprocess.Popen, shm_before: set[str]) -> int:
    """Kill every process of ``child``'s group (it was started with ``start_new_session``) and
    unlink the /dev/shm segments they leaked (new since ``shm_before``, see
    :func:`shm_snapshot`); returns how many were removed."""
    return _remove_shm(shm_before, _kill_group(child.pid, child))


def shm_snapshot() -> set[str]:
    """Names in /dev/shm now: what a later :func:`stop_group` must leave alone."""
    return _shm_names()


def _shm_names() -> set[str]:
    try:
        return set(os.listdir(SHM_DIR))
    except OSError:
        return set()


def _remove_shm(before: set[str], held: set[str]) -> int:
    """Unlink the /dev/shm files that appeared during the run, are still there and were held by
    the killed processes, or are held by no live process of this user (orphans)."""
    new = _shm_names() - before
    if not new:
        return 0
    uid = os.getuid()
    in_use = _mapped_shm([int(e.name) for e in os.scandir("/proc") if e.name.isdigit()])
    removed = 0
    for name in sorted(new):
        path = SHM_DIR / name
        try:
            if path.stat().st_uid != uid:
                continue
            if name in held or name not in in_use:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _read_result(jobdir: Path, net: Netlist, mode: str, steps: int, n: int, wall: float) -> LavaResult:
    info = _read_json(jobdir / W.INFO) or {}
    spikes, vs, counts = [], [], []
    with np.load(jobdir / W.RESULT, allow_pickle=False) as f:
        for i, layer in enumerate(net.layers):
            if isinstance(layer, Flatten) or f"spikes_{i}" not in f.files:
                spikes.append(None), vs.append(None), counts.append(None)
                continue
            spikes.append(f[f"spikes_{i}"])
            vs.append(f[f"v_{i}"])
            counts.append(f[f"counts_{i}"])
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
