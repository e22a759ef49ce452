"""neurosim: low-latency spiking neural networks from training to neuromorphic deployment."""
from threading import RLock as _RLock

from neurosim.threads import prefer_passive_waiting as _prefer_passive_waiting

_prefer_passive_waiting()      # before tqdm (and anything) can import torch: see neurosim.threads

from tqdm import tqdm as _tqdm

# tqdm's default write lock is a multiprocessing RLock, whose creation fixes the process start
# method; Lava's runtime sets it ('fork') when imported and fails if it is already fixed. neurosim's
# progress bars are single-process, so a thread lock is enough and keeps Lava importable.
_tqdm.set_lock(_RLock())

__version__ = "0.1.0"
