"""The job folder through which :func:`neurosim.lava.runner.run_lava` and its worker
(``python -m neurosim.lava.worker JOBDIR``) talk: what each side writes and reads there.

Parent -> worker: ``job.json`` (mode, steps, options: ``batch``, samples per Lava run, 0 for
the per-sample graph; ``spike_samples``, the samples whose spikes come back; the netlist as the
path of a netlist file, or as a :mod:`~neurosim.lava.netcodec` description whose arrays are in
``net_arrays.npz``) and ``x.npz`` (the samples). Worker -> parent: ``progress.json`` (stage,
the samples it is on, samples done), then either ``error.json`` (message, stage, sample, traceback) or
``info.json`` (timing, chosen ProcessModels) and ``result.npz`` (written last); the worker's
stdout and stderr go to ``worker.log``; its other files are replaced atomically. The worker
accepts a netlist only after the parent's checks
(:func:`neurosim.lava.layout.check_netlist`).
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

import neurosim
from neurosim.lava.layout import check_netlist
from neurosim.lava.lifetime import PARENT_ENV
from neurosim.lava.netcodec import decode_net, encode_net
from neurosim.lava.supervisor import EXIT_GRACE_S, HUNG, TIMED_OUT
from neurosim.netlist.schema import Flatten, Netlist

#: Files of a job folder.
JOB, INPUT, NET_ARRAYS, RESULT, ERROR, PROGRESS, INFO, LOG = (
    "job.json", "x.npz", "net_arrays.npz", "result.npz", "error.json", "progress.json",
    "info.json", "worker.log")


# ----------------------------------------------------------------------------- parent side

def write_job(jobdir: Path, net: Netlist, x: np.ndarray, *, mode: str, steps: int, raw_current: bool,
              record: Optional[list[int]], graph_hook: Optional[str], sys_path: Sequence[str],
              netlist_path: Optional[Path] = None, batch: int = 0,
              spike_samples: Optional[int] = None, offset: int = 0,
              readout_steps: Optional[Sequence[int]] = None) -> None:
    """Write the job: ``net`` goes as ``netlist_path`` when given (the file it was loaded from),
    else encoded exactly (:func:`~neurosim.lava.netcodec.encode_net`). ``batch``: samples per
    Lava run (0: the per-sample graph); ``spike_samples``: the first samples whose spikes and
    voltages come back (None: all); ``offset``: the number of ``x[0]`` among all the samples
    of the caller (for messages); ``readout_steps``: the step counts whose readout the batched
    graph also reads (None: ``steps`` only)."""
    job = {"mode": mode, "steps": int(steps), "progress": False, "raw_current": bool(raw_current),
           "record": record, "batch": int(batch), "offset": int(offset),
           "spike_samples": None if spike_samples is None else int(spike_samples),
           "graph_hook": graph_hook, "sys_path": [str(p) for p in sys_path],
           "readout_steps": None if readout_steps is None else [int(t) for t in readout_steps]}
    if netlist_path is not None:
        job["netlist_path"] = str(netlist_path)
    else:
        job["net"], arrays = encode_net(net)
        _savez(jobdir / NET_ARRAYS, arrays)
    _savez(jobdir / INPUT, {"x": x})
    (jobdir / JOB).write_text(json.dumps(job))


def worker_command(jobdir: Path) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` of the worker of ``jobdir``: it imports this ``neurosim`` and stops its
    process group when this process dies (:func:`neurosim.lava.lifetime.watch_parent`)."""
    env = dict(os.environ)
    root = str(Path(neurosim.__file__).resolve().parent.parent)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([root] + paths)
    env[PARENT_ENV] = str(os.getpid())
    return [sys.executable, "-m", "neurosim.lava.worker", str(jobdir)], env


def read_progress(jobdir: Path) -> dict:
    """The worker's last ``{"stage", "sample", "to", "done"}`` (empty before its first)."""
    return _read_json(jobdir / PROGRESS) or {}


def reported(jobdir: Path) -> bool:
    """Whether the worker has reported its outcome (an error, or its complete results)."""
    return (jobdir / ERROR).exists() or (jobdir / RESULT).exists()


def failure(jobdir: Path, ending: str, code: Optional[int], n_samples: int, timeout: float) -> Optional[str]:
    """What went wrong, from how the supervision of the worker ended (``ending``, a
    :class:`~neurosim.lava.supervisor.Supervised` watch result; ``code``, the worker's exit
    code) and what the worker wrote; ``None`` when the job succeeded."""
    if ending == TIMED_OUT:
        return (f"Lava run timed out after {timeout:g} s{_where(read_progress(jobdir), n_samples)}; the worker "
                "and its processes were killed (allow more time: --lava-timeout SECONDS, timeout= in Python)")
    if ending == HUNG:
        if not (jobdir / ERROR).exists():
            return None                   # results complete, the worker hung on exit
        return (_describe_failure(jobdir, None, n_samples)
                + f" (the Lava runtime did not stop within {EXIT_GRACE_S:g} s; killed)")
    if code == 0 and (jobdir / RESULT).exists():
        return None
    return _describe_failure(jobdir, code, n_samples)


def log_tail(jobdir: Path, lines: int = 20) -> str:
    """The last ``lines`` lines the worker printed (progress bar redraws dropped)."""
    return "\n".join(_log_text(jobdir).strip().splitlines()[-lines:])


def read_result(jobdir: Path, net: Netlist) -> tuple[list, list, list, tuple[np.ndarray, np.ndarray], dict]:
    """``(spikes, v, counts, (readout_counts, readout_v), info)`` of a finished job: per layer of
    ``net`` the worker's arrays (``None`` for ``Flatten`` and unrecorded layers), the output
    layer's counts and voltages of every sample, and its ``{"timing", "models"}``."""
    spikes, vs, counts = [], [], []
    with np.load(jobdir / RESULT, allow_pickle=False) as f:
        for i, layer in enumerate(net.layers):
            if isinstance(layer, Flatten) or f"spikes_{i}" not in f.files:
                spikes.append(None), vs.append(None), counts.append(None)
                continue
            spikes.append(f[f"spikes_{i}"])
            vs.append(f[f"v_{i}"])
            counts.append(f[f"counts_{i}"])
        readout = (f["readout_counts"], f["readout_v"])
    return spikes, vs, counts, readout, _read_json(jobdir / INFO) or {}


def _where(state: dict, n_samples: int) -> str:
    if "sample" not in state or state["sample"] is None:
        return " while starting"
    first, to = int(state["sample"]), state.get("to")
    which = (f"sample {first}" if to is None or int(to) - first <= 1 else
             f"samples {first}-{int(to) - 1}")
    return f" while {state.get('stage', 'running')} {which} of {n_samples}"


def _describe_failure(jobdir: Path, code: Optional[int], n_samples: int) -> str:
    err = _read_json(jobdir / ERROR)
    if err:
        where = (f" while {err.get('stage', 'starting')}" if err.get("sample") is None
                 else _where(err, n_samples))
        msg = f"Lava run failed{where}: {err.get('message', '?')}"
        cause = _innermost_cause(_log_text(jobdir)) or _innermost_cause(err.get("traceback", ""))
        if cause and cause not in msg:
            msg += f" [{cause}]"
        return msg
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    return f"the Lava worker {how}{_where(read_progress(jobdir), n_samples)} without reporting a result"


def _innermost_cause(tb: str) -> str:
    """The first 'SomeError: ...' line of a log or traceback: with Lava, the exception a
    ProcessModel raised is printed by its process, and run() only raises "N Exception(s)
    occurred. See output above for details." """
    lines = [l.strip() for l in tb.splitlines() if l.strip()]
    causes = [l for l in lines if not l.startswith(("File ", "Traceback", "^", "~"))
              and ":" in l and l.split(":", 1)[0].replace(".", "").isidentifier()
              and l.split(":", 1)[0].endswith(("Error", "Exception"))]
    return causes[0] if causes else ""


def _log_text(jobdir: Path) -> str:
    try:
        text = (jobdir / LOG).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(l.rsplit("\r", 1)[-1] for l in text.splitlines())   # drop progress redraws


# ----------------------------------------------------------------------------- worker side

def read_job(jobdir: Path) -> tuple[dict, Netlist, np.ndarray]:
    """``(job, net, x)`` of ``jobdir``. The netlist, loaded from its file or decoded, passes
    the parent's checks for the job's mode (:func:`~neurosim.lava.layout.check_netlist`:
    ``Netlist.check``, the fixed-point rule in ``fixed`` mode, what Lava can run) or a
    :class:`~neurosim.errors.NeurosimError` is raised."""
    job = json.loads((jobdir / JOB).read_text())
    if job.get("netlist_path"):
        from neurosim.netlist.hdf5 import load
        net = load(job["netlist_path"])
    else:
        with np.load(jobdir / NET_ARRAYS, allow_pickle=False) as arrays:
            net = decode_net(job["net"], {k: arrays[k] for k in arrays.files})
    check_netlist(net, job["mode"])
    with np.load(jobdir / INPUT, allow_pickle=False) as f:
        x = f["x"]
    return job, net, x


class Stage:
    """Where the worker is (for progress and error messages): the samples ``sample .. to-1`` it
    is on, mirrored to ``path`` (the job's ``progress.json``) when given."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path, self.what, self.sample, self.to, self.done = path, "starting", None, None, 0

    def set(self, what: str, sample: Optional[int] = None, to: Optional[int] = None,
            done: Optional[int] = None) -> None:
        self.what = what
        if sample is not None:
            self.sample, self.to = sample, to
        if done is not None:
            self.done = done
        if self.path is not None:
            _write_json(self.path, {"stage": self.what, "sample": self.sample, "to": self.to, "done": self.done})


def report_error(jobdir: Path, exc: BaseException, stage: Stage) -> None:
    """Write ``error.json`` for ``exc`` (message, the Lava processes' own errors, stage, sample,
    traceback), unless an error was reported already (the first report, nearest the failure,
    stays)."""
    if (jobdir / ERROR).exists():
        return
    process_errors = list(getattr(exc, "lava_process_errors", []))
    message = f"{type(exc).__name__}: {exc}".strip()
    if process_errors:   # the ProcessModel's own exception: the last line of its traceback
        message += " -- in a Lava process: " + process_errors[0].strip().splitlines()[-1]
    _write_json(jobdir / ERROR, {
        "message": message,
        "process_errors": process_errors,
        "stage": stage.what,
        "sample": stage.sample,
        "to": stage.to,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    })


def write_result(jobdir: Path, arrays: dict[str, np.ndarray], timing: dict, models: dict) -> None:
    """Write ``info.json``, then ``result.npz`` (its appearance tells the parent the job is done)."""
    _write_json(jobdir / INFO, {"timing": timing, "models": models})
    _write_atomic(jobdir / RESULT, lambda p: _savez(p, arrays))


# ----------------------------------------------------------------------------- files

def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, obj: object) -> None:
    _write_atomic(path, lambda p: p.write_text(json.dumps(obj)))


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
