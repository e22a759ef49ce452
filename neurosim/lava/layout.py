"""Layout conversions between the netlist (C, H, W) and Lava (W, H, C), and the checks of what
the Lava backend can run: the validation profiles ``lava`` (every synapse kind and geometry
Lava's processes take) and ``lava-fixed`` (also ``fixed``, and biases in Lava's int16), see
:mod:`neurosim.netlist.validate`. No Lava import here: the parent side of a guarded run uses it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from neurosim.dynamics import MODES
from neurosim.errors import NeurosimError
from neurosim.netlist.schema import Flatten, Netlist, Population
from neurosim.netlist.validate import ValidationError, register, validate

#: Lava tag selected per mode.
TAGS = {"fixed": "fixed_pt", "float": "floating_pt"}
#: Lava's fixed-point models keep bias_mant in int16 arrays; larger values would wrap silently.
INT16_MAX = (1 << 15) - 1


# ----------------------------------------------------------------------------- layout helpers

def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Netlist shape (C, H, W) or (N,) to Lava's (W, H, C) or (N,)."""
    return tuple(int(s) for s in shape[::-1])


def to_lava(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Values of one layer in (C, H, W) order (any shape of that size) to Lava's (W, H, C) array."""
    a = np.asarray(a).reshape(shape)
    return np.ascontiguousarray(a.transpose(tuple(range(a.ndim))[::-1]))


def to_lava_time(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Spikes (T, C, H, W) (or (T, N)) to a Lava source buffer (W, H, C, T) (or (N, T))."""
    x = np.asarray(x).reshape(-1, *shape)
    return np.ascontiguousarray(x.transpose(tuple(range(1, x.ndim))[::-1] + (0,)))


def from_lava(a: np.ndarray) -> np.ndarray:
    """A Lava (W, H, C) (or (N,)) array to a flat vector in (C, H, W) order."""
    a = np.asarray(a)
    return a.transpose(tuple(range(a.ndim))[::-1]).reshape(-1)


def from_lava_steps(data: np.ndarray) -> np.ndarray:
    """Recorded spikes (T, W, H, C) (or (T, N)) to (T, n) with neurons in (C, H, W) order."""
    data = np.asarray(data)
    return data.transpose((0,) + tuple(range(1, data.ndim))[::-1]).reshape(data.shape[0], -1)


def netx_utils():
    """lava-dl's ``lava/lib/dl/netx/utils.py``, loaded by itself: importing it as
    ``lava.lib.dl.netx.utils`` first runs lava-dl's package ``__init__`` files (SLAYER, PyTorch,
    dataset warnings; ~6 s), while the file needs only NumPy and h5py."""
    import importlib.util
    import os
    import sys

    name = "_neurosim_netx_utils"
    if name not in sys.modules:
        spec = importlib.util.find_spec("lava.lib.dl")
        path = os.path.join(list(spec.submodule_search_locations)[0], "netx", "utils.py")
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def check_netlist(net: Netlist, mode: str) -> None:
    """Refuse what this backend cannot run in ``mode``, before any Lava process is created: the
    profile ``lava`` (float) or ``lava-fixed``."""
    if mode not in MODES:
        raise NeurosimError(f"mode must be one of {MODES}, got '{mode}'")
    validate(net, "lava-fixed" if mode == "fixed" else "lava")


def _lava(net: Netlist) -> None:
    """Profile ``lava``: every neuron kind (:data:`neurosim.lava.neurons.LAVA_NEURONS`) and every
    projection's kind and geometry (:func:`neurosim.lava.synapses.lava_refusal`) has a Lava process."""
    from neurosim.lava.neurons import LAVA_NEURONS
    from neurosim.lava.synapses import lava_refusal

    for i, layer in enumerate(net.layers):
        if not isinstance(layer, Flatten) and (why := LAVA_NEURONS.refusal(layer.neuron)):
            raise ValidationError(why, i, "neuron/type")
        if isinstance(layer, Population):
            for p, proj in enumerate(layer.projections):
                why = lava_refusal(proj.synapse, net.in_shape(i, p))
                if why:
                    raise ValidationError(why, i, projection=p if p else None)


def _lava_fixed(net: Netlist) -> None:
    """Profile ``lava-fixed`` (after ``fixed`` and ``lava``): every bias fits Lava's int16
    ``bias_mant`` (an analog input layer's current is checked per sample: :func:`check_input`)."""
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Population) and layer.bias is not None:
            check_int16(np.asarray(layer.bias), "bias", i)


register("lava", _lava)
register("lava-fixed", _lava_fixed, requires=("fixed", "lava"))


def check_readout_steps(readout_steps: Sequence[int], steps: int) -> tuple[int, ...]:
    """``readout_steps`` as ascending distinct step counts in 1..``steps``, ``steps`` among
    them, or a :class:`NeurosimError` naming the argument."""
    try:
        values = sorted({int(t) for t in readout_steps} | {int(steps)})
    except (TypeError, ValueError):
        raise NeurosimError(f"readout_steps must be a list of step counts, got {readout_steps!r:.80}") from None
    if values[0] < 1 or values[-1] > steps:
        raise NeurosimError(f"readout_steps must lie in 1..{steps} (the run's steps), got {values}")
    return tuple(values)


def check_input(net: Netlist, x: np.ndarray, steps: int, mode: str, raw_current: bool = False) -> None:
    """Refuse samples ``x`` the backend cannot present to ``net`` (shape, values, and Lava's
    int16 input current)."""
    net.check_samples(x, steps, raw_current)
    if len(x) == 0:
        raise NeurosimError("no input samples (N = 0)")
    if net.has_input_layer and mode == "fixed":
        current = np.round(x) if raw_current else net.layers[0].current(x, True)
        check_int16(current, "input current", 0)


def check_int16(values: np.ndarray, what: str, layer: int) -> None:
    worst = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if worst > INT16_MAX:
        raise NeurosimError(f"layer {layer}: {what} reaches {worst:g}; Lava's fixed-point neurons "
                            f"hold bias_mant in int16 (|bias| <= {INT16_MAX})")
