"""The guardian of a Lava worker: ``python -m neurosim.lava.guardian PARENT [JOBDIR]``.

The worker starts it first thing (:func:`neurosim.lava.lifetime.watch_parent`), in the worker's
process group. It waits, in a process of its own (so neither the worker's GIL nor Lava's busy
model processes delay it), for the first of two deaths:

* the worker's (it finished, or crashed while the parent lives: the parent's
  :class:`~neurosim.lava.supervisor.Supervised` cleans up): the guardian exits;
* the parent's, the command that started the worker (``PARENT``; SIGKILL or a crash, so nothing
  ran its clean-up): it kills the group's other processes (the worker and Lava's model
  processes), unlinks the /dev/shm segments they held and removes ``JOBDIR``, then kills the
  group, itself included.

It waits on pidfds (Linux >= 5.3: woken when a process exits, no polling), else polls every
:data:`POLL_S`. Before waiting it prints ``ready`` on stdout: by then it has its snapshot of
/dev/shm (what it must leave alone). Only the standard library and
:mod:`neurosim.lava.supervisor` are imported.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time
from typing import Optional

from neurosim.lava.supervisor import alive, group_members, mapped_shm, remove_shm, shm_snapshot

#: How often the parent and the worker are checked where pidfds are missing (s).
POLL_S = 0.05
#: What the guardian prints once it watches.
READY = "ready"


def _pidfd(pid: int) -> Optional[int]:
    """A pidfd of ``pid``; ``None`` without pidfd support; raises ``ProcessLookupError`` when
    ``pid`` is gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise
    except (AttributeError, OSError):
        return None


def parent_died(parent: int, worker: int) -> bool:
    """Block until ``parent`` or ``worker`` exits; True when the parent did (or was gone already)."""
    try:
        fds = {_pidfd(parent): parent, _pidfd(worker): worker}
    except ProcessLookupError:
        return alive(worker) or not alive(parent)
    if None in fds:
        while alive(parent) and os.getppid() == worker:
            time.sleep(POLL_S)
        return not alive(parent)
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    ended = {fds[fd] for fd, _ in poller.poll()}
    return parent in ended or not alive(parent)


def stop_own_group(pgid: int, shm_before: set[str], jobdir: Optional[str]) -> None:
    """Kill the other processes of the group ``pgid``, unlink the /dev/shm segments they held
    (new since ``shm_before``), remove ``jobdir``, then SIGKILL the whole group, this process
    included (and anything forked meanwhile)."""
    me = os.getpid()
    held: set[str] = set()
    try:
        for _ in range(100):
            others = [p for p in group_members(pgid) if p != me]
            held |= mapped_shm(others)
            if not others:
                break
            for pid in others:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)
        remove_shm(shm_before, held)
        if jobdir:
            shutil.rmtree(jobdir, ignore_errors=True)
    finally:
        os.killpg(pgid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Guard the worker (this process's parent) of the command ``argv[0]``; ``argv[1]``: the job folder."""
    parent, jobdir = int(argv[0]), (argv[1] if len(argv) > 1 else None)
    worker, pgid = os.getppid(), os.getpgid(0)
    shm_before = shm_snapshot()
    print(READY, flush=True)
    sys.stdout.close()
    if not parent_died(parent, worker):
        return 0
    print(f"neurosim lava guardian: parent {parent} died; stopping the worker {worker} and its Lava processes",
          file=sys.stderr, flush=True)
    stop_own_group(pgid, shm_before, jobdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
