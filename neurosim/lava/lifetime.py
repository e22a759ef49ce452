"""A Lava run does not outlive the command that started it.

* In the parent (:func:`neurosim.lava.runner.run_lava`): :func:`terminate_raises` turns SIGTERM
  and SIGHUP into :class:`Terminated` while the worker is watched, so the runner's clean-up
  (:meth:`neurosim.lava.supervisor.Supervised.stop`: kill the worker's process group, unlink
  its ``/dev/shm`` segments) runs before the process exits. ``Terminated`` is a ``SystemExit`` (code 128 + signal number): uncaught, the process
  exits quietly with that code; the ``neurosim`` command prints one line.
* In the worker (``python -m neurosim.lava.worker``): :func:`watch_parent` starts its guardian,
  a small process of the worker's group (:mod:`neurosim.lava.guardian`) that notices the parent
  died (SIGKILL, a crash: nothing ran its clean-up) as it happens and then kills the group (the
  worker and Lava's model processes) and unlinks the shared memory the group held.

Only the standard library is imported here, and the guardian's module (which imports no more):
the ``neurosim`` command imports this module.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Optional, Union

from neurosim.lava.guardian import READY

#: Environment variable through which the runner tells the worker its pid.
PARENT_ENV = "NEUROSIM_LAVA_PARENT"


class Terminated(SystemExit):
    """SIGTERM/SIGHUP arrived during a guarded Lava run (after the run was cleaned up)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"terminated by {signal.Signals(self.signum).name}"


def terminate_raises(signals=(signal.SIGTERM, signal.SIGHUP)) -> Callable[[], None]:
    """Make ``signals`` raise :class:`Terminated` (main thread only; an ignored signal, e.g.
    SIGHUP under ``nohup``, stays ignored); returns the function that restores the previous
    handlers. A second signal while the first one's clean-up runs is ignored; one that arrives
    while restoring is delivered again to the restored handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    state = {"signum": None, "closing": False}

    def handler(signum, frame):
        if state["signum"] is not None:
            return                      # already terminating: let the clean-up finish
        state["signum"] = signum
        if not state["closing"]:
            raise Terminated(signum)

    previous = {}
    for sig in signals:
        old = signal.getsignal(sig)
        if old is signal.SIG_IGN or old is None:    # None: a handler not set from Python
            continue
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        raised = state["signum"] is not None
        state["closing"] = True
        for sig, old in previous.items():
            signal.signal(sig, old)
        if not raised and state["signum"] is not None:
            signal.raise_signal(state["signum"])

    return restore


def watch_parent(jobdir: Union[str, Path, None] = None) -> Optional[subprocess.Popen]:
    """In the worker, first thing: start its guardian (:mod:`neurosim.lava.guardian`), which,
    when the parent named by ``$NEUROSIM_LAVA_PARENT`` dies, kills this process group (the
    worker leads it: ``start_new_session``), unlinks the /dev/shm segments it held and removes
    ``jobdir``; returns once the guardian watches. Does nothing (returns None) without the
    variable or when this process does not lead its own group (killing the group would hit
    others)."""
    try:
        parent = int(os.environ[PARENT_ENV])
    except (KeyError, ValueError):
        return None
    if os.getpgid(0) != os.getpid():
        return None
    guardian = subprocess.Popen([sys.executable, "-m", "neurosim.lava.guardian", str(parent), str(jobdir or "")],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    with guardian.stdout:
        ready = guardian.stdout.readline().decode(errors="replace").strip()
    if ready != READY:
        print(f"neurosim lava worker: its guardian did not start (exit code {guardian.wait()}); "
              "if the parent is killed, Lava's processes may outlive it", file=sys.stderr, flush=True)
    return guardian
