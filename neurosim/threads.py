"""Thread counts: one number for torch's intra-op pool and neurosim's kernel pool, and OpenMP
threads that sleep when idle.

torch's CPU kernels run on an OpenMP pool whose idle threads spin (busy-wait) by default; the
simulator's Numba kernels run on their own pool (:func:`neurosim.sim.kernels.parallel`, sized
by ``torch.get_num_threads()``, so the two agree). On a machine with other work, spinning
OpenMP threads take the cores the other pool needs: measured in docs/benchmarks.md
("Threads"), ``neurosim convert`` took 2.2x as long. :func:`prefer_passive_waiting` sets
``OMP_WAIT_POLICY=PASSIVE`` (unless the user set it) and must run before torch is imported,
which ``import neurosim`` does; :func:`configure` sets the count.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from neurosim.errors import NeurosimError


def prefer_passive_waiting() -> None:
    """Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), unless the
    environment already chose; only effective before torch (its OpenMP runtime) is loaded, so a
    script that imports torch before neurosim gets a warning (its threads spin: the CIFAR
    ResNet-20 simulated at 1.0-1.6 instead of 5.2 samples/s on a loaded 2-core machine)."""
    if "OMP_WAIT_POLICY" not in os.environ and "torch" in sys.modules:
        print("neurosim: warning: torch was imported before neurosim, so its idle OpenMP threads spin "
              "(set OMP_WAIT_POLICY=PASSIVE or import neurosim first; docs/benchmarks.md, 'Threads')",
              file=sys.stderr)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure(threads: Optional[int] = None) -> int:
    """Use ``threads`` threads for torch and the simulator's kernels (default: the available
    cores, or ``OMP_NUM_THREADS`` when set); return the count. torch is not imported for it:
    before torch is loaded the count goes to ``OMP_NUM_THREADS``, which torch reads when it
    starts (a command such as ``neurosim info`` never loads torch)."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else available_cores()
    if threads < 1:
        raise NeurosimError(f"--threads must be at least 1, got {threads}")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
    else:
        os.environ["OMP_NUM_THREADS"] = str(int(threads))
    return int(threads)
