"""Where torch computes: ``--device cpu | cuda | cuda:N | auto``.

``cpu`` is the default of every command and function that takes a device: CPU results stay
bit-identical to earlier runs and across machines. ``cuda`` (the current GPU) and ``cuda:N``
need a GPU that torch sees; without one, :func:`resolve_device` raises one
:class:`~neurosim.errors.NeurosimError` naming the torch build. ``auto`` is ``cuda`` when torch
sees a GPU, else ``cpu``.

torch is imported only when a device is resolved: :func:`device_arg` checks the spelling for
argparse without it (the command line loads torch for no ``--help``).
"""
from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any, Union

from neurosim.errors import NeurosimError

if TYPE_CHECKING:
    import torch

DEFAULT_DEVICE = "cpu"
_NAME = re.compile(r"cpu|auto|cuda(:\d+)?")
#: The start of every ``--device`` help text.
HELP = ("cpu (the default: results bit-identical to earlier runs; not auto, which on a machine with a GPU would "
        "move a run, and a resumed checkpoint, to kernels that round differently), cuda, cuda:N, or auto (cuda "
        "when torch sees a GPU, else cpu)")


def device_arg(text: str) -> str:
    """``text`` normalised if it spells a device (cpu, cuda, cuda:N, auto); an argparse type."""
    name = text.strip().lower()
    if not _NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got '{text}'")
    return name


def resolve_device(name: Union[str, "torch.device"] = DEFAULT_DEVICE) -> "torch.device":
    """The :class:`torch.device` that ``name`` (cpu, cuda, cuda:N, auto; a ``torch.device`` passes)
    stands for; a :class:`NeurosimError` when it names a GPU that torch does not see."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    try:
        name = device_arg(name)
    except argparse.ArgumentTypeError as exc:
        raise NeurosimError(f"--device: {exc}") from None
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        version = torch.__version__.split("+")[0]
        build = ("CPU build: install a CUDA build of torch" if torch.version.cuda is None else
                 f"CUDA {torch.version.cuda} build, but no GPU is visible: check the driver and CUDA_VISIBLE_DEVICES")
        raise NeurosimError(f"--device {name}: no CUDA device (torch {version}, {build}); use --device cpu or auto")
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise NeurosimError(f"--device {name}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag of
    Linux's ``/proc/cpuinfo``). Without it, oneDNN emulates bfloat16 and autocast is slower than
    float32 (measured: an Intel Xeon with AVX-512 but no BF16, ResNet-20 batch 128 on 2 threads,
    427 img/s in float32 against 242 with bfloat16 autocast). False where the file is absent."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in it (dicts, lists, tuples, nested) on the CPU, for a checkpoint
    that loads anywhere; CPU tensors are the same objects (no copy)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return obj
