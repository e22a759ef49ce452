"""Layout conversions between the netlist (C, H, W) and Lava (W, H, C), and the checks of what
the Lava backend can run. No Lava import here: the parent side of a guarded run uses it.
"""
from __future__ import annotations

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.netlist.schema import Conv, Flatten, Input, Netlist, Pool

MODES = ("fixed", "float")
#: Lava tag selected per mode.
TAGS = {"fixed": "fixed_pt", "float": "floating_pt"}
#: Lava's fixed-point models keep bias_mant in int16 arrays; larger values would wrap silently.
INT16_MAX = (1 << 15) - 1
#: Lava's Conv models keep kernel size, stride, padding, dilation and groups in int8 arrays
#: (groups = 130 becomes -126 and the model raises).
INT8_MAX = (1 << 7) - 1


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


def lava_conv_weight(weight: np.ndarray) -> np.ndarray:
    """PyTorch cross-correlation weight (out, in, kh, kw) to Lava's conv weight (out, kw, kh, in)."""
    w = np.asarray(weight)
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose((0, 3, 2, 1)))


def check_netlist(net: Netlist, mode: str) -> None:
    """Refuse what this backend cannot run, before any Lava process is created."""
    from neurosim.sim.simulator import check_fixed_point   # the simulator's exactness rule

    if mode not in MODES:
        raise NeurosimError(f"mode must be one of {MODES}, got '{mode}'")
    if not net.layers:
        raise NeurosimError("the netlist has no layers")
    if not net.has_input_layer and net.input_shape is None:
        raise NeurosimError("a netlist without an 'input' layer needs input_shape (spike input)")
    if mode == "fixed":
        check_fixed_point(net)
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Input) and i > 0:
            raise NeurosimError(f"layer {i}: an 'input' layer may only be layer 0")
        if isinstance(layer, Flatten) and i > 0 and isinstance(net.layers[i - 1], Flatten):
            raise NeurosimError(f"layer {i}: two 'flatten' layers in a row")
        if isinstance(layer, (Conv, Pool)):
            if len(net.in_shape(i)) != 3:
                raise NeurosimError(f"layer {i}: '{layer.type_name}' needs (C, H, W) input, "
                                    f"got {net.in_shape(i)}")
            # (groups above 127 are expanded to groups = 1 by the builder)
            geometry = {"stride": layer.stride, "padding": layer.padding,
                        "kernelSize": tuple(layer.weight.shape[-2:])}
            if isinstance(layer, Conv):
                geometry["dilation"] = layer.dilation
            for key, values in geometry.items():
                if max(values) > INT8_MAX:
                    raise NeurosimError(
                        f"layer {i}: '{key}' = {tuple(values)}: Lava's Conv ProcessModels keep it in "
                        f"int8, values above {INT8_MAX} are not supported")
        if mode == "fixed" and getattr(layer, "bias", None) is not None and not isinstance(layer, Input):
            check_int16(np.asarray(layer.bias), "bias", i)


def check_input(net: Netlist, x: np.ndarray, steps: int, mode: str, raw_current: bool = False) -> None:
    """Refuse samples ``x`` the backend cannot present to ``net`` (shape, values, and Lava's
    int16 input current)."""
    net.check_samples(x, steps)
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
