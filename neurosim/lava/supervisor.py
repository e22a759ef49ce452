"""Supervision of a child process group: start a command in its own session, watch it under
a time limit, kill its whole process group and remove the ``/dev/shm`` segments it leaked.

Lava's runtime spawns model processes that talk through multiprocessing shared memory, which
a killed process never unlinks; killing only the child would leave both behind. Everything
here reads ``/proc`` (Linux). Only the standard library is imported: the ``neurosim`` command
(through :mod:`neurosim.lava.lifetime`) and the benchmarks use this module without Lava.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

SHM_DIR = Path("/dev/shm")
#: How often a watched child is polled (s).
POLL_S = 0.05
#: After the child reported its outcome, how long it may take to exit before it is killed (s).
EXIT_GRACE_S = 3.0
#: How :meth:`Supervised.watch` ended: the child exited; it reported its outcome but did not
#: exit within :data:`EXIT_GRACE_S`; the time limit passed.
EXITED, HUNG, TIMED_OUT = "exited", "hung", "timed out"


# ----------------------------------------------------------------------------- /proc

def proc_stat(pid: int) -> Optional[list[str]]:
    """Fields of ``/proc/<pid>/stat`` after "pid (comm)": state, ppid, pgrp, ...; ``None``
    when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a killed process stays one until it is reaped)."""
    fields = proc_stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if fields and len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def descendants(pid: int) -> list[int]:
    """PIDs of every live process below ``pid`` (children, their children, ...)."""
    parent = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields and len(fields) > 1 and fields[0] not in ("Z", "X"):
                parent[int(entry.name)] = int(fields[1])
    below, frontier = [], [pid]
    while frontier:
        frontier = [p for p, q in parent.items() if q in frontier]
        below += frontier
    return below


def resident_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (``/proc/<pid>/stat``'s rss pages), 0 when it is gone."""
    fields = proc_stat(pid)
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE") if fields and len(fields) > 21 else 0


def mapped_shm(pids: Sequence[int]) -> set[str]:
    """Names of the /dev/shm files mapped by ``pids``."""
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


# ----------------------------------------------------------------------------- /dev/shm

def shm_snapshot() -> set[str]:
    """Names in /dev/shm now: what a later :func:`stop_group` or :func:`remove_shm` must leave
    alone."""
    try:
        return set(os.listdir(SHM_DIR))
    except OSError:
        return set()


def remove_shm(before: set[str], held: set[str]) -> int:
    """Unlink the /dev/shm files of this user that appeared since ``before`` (a
    :func:`shm_snapshot`), are still there and are in ``held`` (the segments the killed
    processes mapped) or mapped by no live process (orphans); returns how many."""
    new = shm_snapshot() - before
    if not new:
        return 0
    uid = os.getuid()
    in_use = mapped_shm([int(e.name) for e in os.scandir("/proc") if e.name.isdigit()])
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


# ----------------------------------------------------------------------------- process groups

def _kill_group(pgid: int, child: subprocess.Popen) -> set[str]:
    """SIGKILL every process of the group ``pgid``; return the /dev/shm names they held."""
    held: set[str] = set()
    for _ in range(50):
        members = group_members(pgid)
        held |= mapped_shm(members)
        if not members:
            break
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
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
    return remove_shm(shm_before, _kill_group(child.pid, child))


class Supervised:
    """A command started in its own session (it leads its own process group, so everything it
    starts can be killed with it), its output to ``log``; watch it with :meth:`watch`, then
    always :meth:`stop` it.
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.shm_before = shm_snapshot()
        with open(log, "wb") as out:
            self.child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, env=dict(env), start_new_session=True)
        #: The child's process group (``start_new_session``: its own pid).
        self.pgid = self.child.pid

    @property
    def returncode(self) -> Optional[int]:
        """The child's exit code (negative: killed by that signal); ``None`` while it runs."""
        return self.child.returncode

    def watch(self, timeout: float, poll: Callable[[], bool]) -> str:
        """Wait until the child ends; returns :data:`EXITED`, :data:`HUNG` or :data:`TIMED_OUT`.

        ``poll()`` is called every :data:`POLL_S` seconds (e.g. to show progress) and returns
        whether the child has reported its outcome; from then on it has :data:`EXIT_GRACE_S`
        seconds to exit (:data:`HUNG` otherwise). ``timeout`` (s) limits the whole wait.
        Nothing is killed here: :meth:`stop` does that.
        """
        t0 = time.monotonic()
        reported_at: Optional[float] = None
        while True:
            code = self.child.poll()
            reported = poll()
            if code is not None:
                return EXITED
            now = time.monotonic()
            if reported and reported_at is None:
                reported_at = now
            if reported_at is not None and now - reported_at > EXIT_GRACE_S:
                return HUNG
            if now - t0 > timeout:
                return TIMED_OUT
            time.sleep(POLL_S)

    def stop(self) -> int:
        """Kill what is left of the child's group (after a clean exit: nothing, or zombies)
        and unlink the /dev/shm segments it leaked; returns how many were removed."""
        return stop_group(self.child, self.shm_before)
