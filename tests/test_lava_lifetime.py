"""A Lava run does not outlive the command that started it.

``neurosim run --lava`` on a job that would take minutes is killed once its Lava worker
group is running (worker + Lava's model processes, /dev/shm channels mapped):

* SIGTERM: the command stops the group, unlinks the shared memory and exits with code 143
  and one line on stderr;
* SIGKILL (no clean-up can run in the parent): the worker's guardian (a process of the worker's
  group) notices that the parent died and kills the group, unlinking the shared memory and the
  job folder.

Either way, within 3 s no process of the group is alive and no segment it held is left.
The supervision itself (:class:`neurosim.lava.supervisor.Supervised`) is checked on small
Python children: how a watch ends, and that stopping kills grandchildren and unlinks the
shared memory they leaked.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neurosim.lava.supervisor import (
    EXIT_GRACE_S, EXITED, HUNG, TIMED_OUT, Supervised, alive, group_members, mapped_shm, proc_stat,
)
from neurosim.netlist import hdf5
from neurosim.netlist import Flatten, Input, Netlist, RMP, conv, dense, pool
from tests.conftest import ROOT

STEPS, SAMPLES = 2000, 20     # ~2 min of Lava per mode: the run is far from its end when killed
START_S = 45.0                # until the Lava processes run
GONE_S = 3.0                  # from the kill until the group and its shared memory are gone


def digits_conv_net(path: Path) -> Path:
    """Input (1, 8, 8) -> conv 3x3 (4) -> pool 2 -> flatten -> dense (10): 13 Lava processes."""
    rng = np.random.default_rng(0)
    net = Netlist([
        Input((1, 8, 8), RMP(100), weight=128.0),
        conv((4, 8, 8), 2 * rng.integers(-40, 60, (4, 1, 3, 3)).astype(float), RMP(120), padding=(1, 1)),
        pool((4, 4, 4), np.full((2, 2), 2.0), RMP(5)),
        Flatten((64,)),
        dense((10,), 2 * rng.integers(-60, 60, (10, 64)).astype(float), RMP(90)),
    ], meta={"dataset": "digits", "timesteps": 8})
    return hdf5.save(net, path)


def find_workers(parent: int) -> dict[int, Path]:
    """{pid: job folder} of the Lava workers ``parent`` started (``--lava`` runs one per mode,
    each leading its own process group)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if not fields or int(fields[1]) != parent:
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"neurosim.lava.worker" in argv:
            found[int(entry.name)] = Path(argv[argv.index(b"neurosim.lava.worker") + 1].decode())
    return found


def start_lava_run(tmp_path: Path):
    """``neurosim run --lava`` until its worker group runs Lava; returns the command, the
    worker's group, its members, the /dev/shm segments they map and the job folder."""
    net = digits_conv_net(tmp_path / "net.net")
    log = open(tmp_path / "neurosim.log", "w")
    try:
        cmd = subprocess.Popen([sys.executable, "-m", "neurosim", "run", str(net), "--steps", str(STEPS),
                                "--limit", str(SAMPLES), "--lava", "--lava-samples", str(SAMPLES),
                                "--lava-timeout", "900", "--out", str(tmp_path)],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    deadline = time.monotonic() + START_S
    try:
        while True:
            assert cmd.poll() is None, f"neurosim ended early: {(tmp_path / 'neurosim.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no Lava run within the time: " + \
                (tmp_path / "neurosim.log").read_text()[-3000:]
            for pgid, jobdir in find_workers(cmd.pid).items():
                try:
                    stage = json.loads((jobdir / "progress.json").read_text()).get("stage")
                except (OSError, ValueError):
                    stage = None
                members = group_members(pgid)
                held = mapped_shm(members) & set(os.listdir("/dev/shm"))   # not the unlinked ones
                if stage == "running" and len(members) >= 3 and held:
                    assert pgid in members and proc_stat(pgid)[2] == str(pgid)   # leads its own group
                    assert int(proc_stat(cmd.pid)[2]) != pgid                    # not the command's group
                    return cmd, pgid, members, held, jobdir
            time.sleep(0.1)
    except BaseException:
        cmd.kill()
        cmd.wait()
        raise


def wait_gone(pgid: int, held: set[str], t_kill: float) -> float:
    """Seconds from ``t_kill`` until no process of ``pgid`` lives and no segment of ``held``
    is in /dev/shm; fails after GONE_S."""
    while True:
        alive = group_members(pgid)
        left = held & set(os.listdir("/dev/shm"))
        elapsed = time.monotonic() - t_kill
        if not alive and not left:
            return elapsed
        assert elapsed < GONE_S, f"{GONE_S} s after the kill: group {pgid} alive {alive}, shm left {sorted(left)}"
        time.sleep(0.02)


def orphan_shm(before: set[str]) -> set[str]:
    """New /dev/shm files that no live process maps."""
    new = set(os.listdir("/dev/shm")) - before
    in_use = mapped_shm([int(e.name) for e in os.scandir("/proc") if e.name.isdigit()])
    return {n for n in new if n not in in_use}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_command_leaves_no_lava_process_or_shared_memory(tmp_path, sig):
    shm_before = set(os.listdir("/dev/shm"))
    cmd, pgid, members, held, jobdir = start_lava_run(tmp_path)
    try:
        assert held <= set(os.listdir("/dev/shm")) - shm_before      # the run's own segments
        groups = list(find_workers(cmd.pid))                         # the other mode's worker too
        t_kill = time.monotonic()
        cmd.send_signal(sig)
        gone = wait_gone(pgid, held, t_kill)
        print(f"\n{signal.Signals(sig).name}: {len(members)} processes of group {pgid}, {len(held)} /dev/shm "
              f"segments; all gone {gone:.2f} s after the kill")
        code = cmd.wait(timeout=10)
    finally:
        if cmd.poll() is None:
            cmd.kill()
            cmd.wait()
    out = (tmp_path / "neurosim.log").read_text()
    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM, out[-3000:]
        last = out.replace("\r", "\n").strip().splitlines()[-1]
        assert last.startswith("neurosim: terminated by SIGTERM") and "Traceback" not in out, out[-3000:]
    else:
        assert code == -signal.SIGKILL
    # Every worker group (one per mode, each cleaned up by its own guardian), its job folder and
    # every segment of the run are gone within GONE_S of the kill.
    while jobdir.exists() or any(group_members(g) for g in groups) or orphan_shm(shm_before):
        assert time.monotonic() - t_kill < GONE_S, (f"{GONE_S} s after the kill: job folder {jobdir.exists()}, "
                                                    f"groups {[g for g in groups if group_members(g)]}, "
                                                    f"orphan segments {sorted(orphan_shm(shm_before))}")
        time.sleep(0.05)


#: A child that leaks a /dev/shm segment (printing its name), starts a grandchild, reports
#: (creates the file ``sys.argv[1]``) and hangs.
HANGING_CHILD = """
import subprocess, sys, time
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(create=True, size=4096)
print(shm.name, flush=True)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").close()
time.sleep(600)
"""


def test_supervised_child_endings_and_clean_up(tmp_path):
    def run(code: str, timeout: float, poll=lambda: False, *args: str):
        child = Supervised([sys.executable, "-c", code, *args], os.environ, tmp_path / "log")
        t0 = time.monotonic()
        try:
            ending = child.watch(timeout, poll)
        finally:
            removed = child.stop()
        assert group_members(child.pgid) == []         # grandchildren included
        return ending, child.returncode, removed, time.monotonic() - t0

    assert run("raise SystemExit(3)", 60)[:2] == (EXITED, 3)
    assert run("import time; time.sleep(600)", 0.5)[0] == TIMED_OUT
    reported = tmp_path / "REPORTED"
    ending, code, removed, elapsed = run(HANGING_CHILD, 60, reported.exists, str(reported))
    assert (ending, code) == (HUNG, -signal.SIGKILL) and EXIT_GRACE_S < elapsed < EXIT_GRACE_S + 10
    leaked = (tmp_path / "log").read_text().split()[0].lstrip("/")
    assert removed >= 1 and not os.path.exists(f"/dev/shm/{leaked}")


#: A worker: starts its guardian (``watch_parent``), leaks a /dev/shm segment, starts a
#: grandchild, prints the guardian's pid and the segment's name, then hangs (``hang``) or exits.
GUARDED_WORKER = """
import subprocess, sys, time
from multiprocessing import shared_memory
from neurosim.lava.lifetime import watch_parent
guardian = watch_parent(sys.argv[1])
shm = shared_memory.SharedMemory(create=True, size=4096)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(guardian.pid, shm.name, flush=True)
if sys.argv[2] == "hang":
    time.sleep(600)
"""


@pytest.mark.parametrize("ending", ["parent killed", "worker exits"])
def test_guardian_stops_the_worker_group_when_the_parent_dies(tmp_path, ending):
    """The worker's guardian (a process of its own, neurosim.lava.guardian): when the parent
    is SIGKILLed, the worker's group, the segment it held and the job folder are gone within
    3 s; when the worker ends first, the guardian just exits."""
    from neurosim.lava.lifetime import PARENT_ENV
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{PARENT_ENV: str(parent.pid)})
    worker = subprocess.Popen([sys.executable, "-c", GUARDED_WORKER, str(jobdir),
                               "hang" if ending == "parent killed" else "exit"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        guardian, segment = worker.stdout.readline().split()
        assert len(group_members(worker.pid)) >= 3 and os.path.exists(f"/dev/shm/{segment}")
        if ending == "parent killed":
            t_kill = time.monotonic()
            parent.kill()
            while group_members(worker.pid) or os.path.exists(f"/dev/shm/{segment}") or jobdir.exists():
                assert time.monotonic() - t_kill < GONE_S, "the guardian did not stop the worker group"
                time.sleep(0.02)
            assert worker.wait(timeout=5) == -signal.SIGKILL
            assert f"parent {parent.pid} died" in worker.stderr.read()
        else:
            assert worker.wait(timeout=30) == 0
            deadline = time.monotonic() + GONE_S
            while alive(int(guardian)):
                assert time.monotonic() < deadline, "the guardian outlived its worker"
                time.sleep(0.02)
            assert jobdir.exists()                 # the parent lives: its clean-up, not the guardian's
    finally:
        for proc in (parent, worker):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for pid in group_members(worker.pid):
            os.kill(pid, signal.SIGKILL)
