"""A Lava run does not outlive the command that started it.

* In the parent (:func:`neurosim.lava.runner.run_lava`): :func:`terminate_raises` turns SIGTERM
  and SIGHUP into :class:`Terminated` while the worker is watched, so the runner's clean-up
  (:meth:`neurosim.lava.supervisor.Supervised.stop`: kill the worker's process group, unlink
  its ``/dev/shm`` segments) runs before the process exits. ``Terminated`` is a ``SystemExit`` (code 128 + signal number): uncaught, the process
  exits quietly with that code; the ``neurosim`` command prints one line.
* In the worker (``python -m neurosim.lava.worker``): :func:`watch_parent` starts a daemon
  thread that notices the parent died (SIGKILL, a crash: nothing ran its clean-up) and then
  kills the worker's own process group (Lava's model processes) and unlinks the shared memory
  the group held, within ~0.2 s plus the kill.

Only the standard library is imported here, and :mod:`neurosim.lava.supervisor` (which imports
no more): the ``neurosim`` command imports this module.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Union

from neurosim.lava.supervisor import alive, group_members, mapped_shm, remove_shm, shm_snapshot

#: Environment variable through which the runner tells the worker its pid.
PARENT_ENV = "NEUROSIM_LAVA_PARENT"
#: How often the worker checks that its parent is alive (s).
WATCH_S = 0.2


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


def watch_parent(jobdir: Union[str, Path, None] = None) -> Optional[threading.Thread]:
    """In the worker, first thing: when the parent named by ``$NEUROSIM_LAVA_PARENT`` dies, kill
    this process group (the worker leads it: ``start_new_session``), unlink the /dev/shm
    segments it held and remove ``jobdir``. Does nothing (returns None) without the variable
    or when this process does not lead its own group (killing the group would hit others)."""
    try:
        parent = int(os.environ[PARENT_ENV])
    except (KeyError, ValueError):
        return None
    pgid = os.getpgid(0)
    if pgid != os.getpid():
        return None
    shm_before = shm_snapshot()
    ppid = os.getppid()          # != parent: the parent is gone already, or a wrapper between us

    def parent_alive() -> bool:
        if os.getppid() != ppid:                    # re-parented: the parent died
            return False
        return ppid == parent or alive(parent)

    def watch() -> None:
        while parent_alive():
            time.sleep(WATCH_S)
        print(f"neurosim lava worker: parent {parent} died; stopping the Lava processes",
              file=sys.stderr, flush=True)
        _stop_own_group(pgid, shm_before, jobdir)

    thread = threading.Thread(target=watch, name="neurosim-parent-watch", daemon=True)
    thread.start()
    return thread


def _stop_own_group(pgid: int, shm_before: set[str], jobdir: Union[str, Path, None]) -> None:
    """Kill the other processes of this group, unlink the /dev/shm segments the group held
    (new since ``shm_before``), remove ``jobdir``, then SIGKILL the whole group, this
    process included (and anything forked meanwhile)."""
    me = os.getpid()
    held: set[str] = set()
    try:
        for _ in range(40):
            others = [p for p in group_members(pgid) if p != me]
            held |= mapped_shm(others + [me])
            if not others:
                break
            for pid in others:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        remove_shm(shm_before, held)
        if jobdir is not None:
            shutil.rmtree(jobdir, ignore_errors=True)
    finally:
        os.killpg(pgid, signal.SIGKILL)
