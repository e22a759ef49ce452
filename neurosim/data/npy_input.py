"""A user's own input array (``.npy``) as the samples of a netlist, and run results as ``.npy``.

Accepted layouts (``docs/netx-run.md``), with ``S`` the net's input shape in (C, H, W) order,
``S_lava`` the same reversed (Lava ports are (W, H, C)), ``N`` samples and ``T`` steps:

- a net **without** an ``input`` layer takes 0/1 spikes: ``(T, *S)`` one sample or
  ``(N, T, *S)`` a batch (``time_axis='first'``, neurosim's order), or ``(*S, T)`` /
  ``(N, *S, T)`` (``time_axis='last'``: lava-dl's order, e.g. a ``RingBuffer``'s
  ``(neurons, T)`` data);
- a net **with** an ``input`` layer takes one constant value per input neuron: ``S`` or
  ``(N, *S)``; by default the sample ``x`` (the current is ``weight * x + bias``, SLAYER's
  input transform), with ``raw_current`` the input neurons' bias current in mantissas, as
  netx's ``bias_mant`` takes it (lava-dl's tinynet test). A time axis is refused: the input
  layer's drive is constant.

``layout='whc'`` reads the spatial axes in Lava's (W, H, C) order instead of (C, H, W).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.io.atomic import atomic_path
from neurosim.netlist.schema import MAX_TIMESTEPS, Flatten, Netlist

TIME_AXES = ("first", "last")
LAYOUTS = ("chw", "whc")
#: Largest array accepted from a file (values), as the netlist reader bounds its arrays.
MAX_VALUES = 1 << 28


def _expected(net: Netlist, time_axis: str, layout: str) -> str:
    shape = tuple(net.sample_shape)
    s = ", ".join(map(str, shape[::-1] if layout == "whc" else shape))
    if net.has_input_layer:
        return f"({s}) or (N, {s})"
    return f"(T, {s}) or (N, T, {s})" if time_axis == "first" else f"({s}, T) or (N, {s}, T)"


def load_npy(path: Path) -> np.ndarray:
    """A numeric array from ``path`` (no pickles), or one error line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise NeurosimError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise NeurosimError(f"{path}: not a readable .npy array ({exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    if not isinstance(arr, np.ndarray):
        raise NeurosimError(f"{path}: holds several arrays (.npz); save one array with numpy.save")
    if arr.dtype.kind not in "biuf":
        raise NeurosimError(f"{path}: dtype {arr.dtype} is not numeric")
    if arr.size > MAX_VALUES:
        raise NeurosimError(f"{path}: {arr.size} values exceed the limit of {MAX_VALUES}")
    return np.array(arr)


def samples_from_array(arr: np.ndarray, net: Netlist, *, time_axis: str = "first", layout: str = "chw",
                       steps: Optional[int] = None, source: str = "<array>") -> tuple[np.ndarray, int]:
    """``(x, T)``: the batch the simulator takes (``(N, *S)`` currents or ``(N, T, *S)`` spikes
    in (C, H, W) order) and the steps to run: the array's ``T``, or ``steps`` (more steps add
    steps without input spikes, fewer keep the first ones). Errors name ``source`` and the
    shape expected."""
    if time_axis not in TIME_AXES or layout not in LAYOUTS:
        raise NeurosimError(f"time axis must be one of {TIME_AXES} and layout one of {LAYOUTS}")
    shape = tuple(net.sample_shape)
    file_shape = shape[::-1] if layout == "whc" else shape
    k = len(shape)

    def bad(why: str) -> NeurosimError:
        return NeurosimError(f"{source}: array of shape {arr.shape} {why}; expected "
                             f"{_expected(net, time_axis, layout)}")

    if net.has_input_layer:
        if arr.ndim not in (k, k + 1) or tuple(arr.shape[arr.ndim - k:]) != file_shape:
            raise bad("does not fit the input layer (one constant value per input neuron, no time axis)")
        x = arr.reshape((-1, *file_shape))
        if layout == "whc":
            x = x.transpose(0, *range(k, 0, -1))
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise NeurosimError(f"{source}: input values contain NaN or infinite values")
        n_steps = steps
        if n_steps is None:
            raise NeurosimError(f"{source}: a constant input needs the number of steps (--steps)")
        return np.ascontiguousarray(x, dtype=np.float64), n_steps
    if arr.ndim not in (k + 1, k + 2):
        raise bad("has the wrong number of axes")
    x = arr if arr.ndim == k + 2 else arr[None]
    if time_axis == "last":                                   # (N, *S, T) -> (N, T, *S)
        x = np.moveaxis(x, -1, 1)
    if tuple(x.shape[2:]) != file_shape:
        raise bad("does not fit the input shape")
    if layout == "whc":
        x = x.transpose(0, 1, *range(k + 1, 1, -1))
    if not np.all((x == 0) | (x == 1)):
        raise NeurosimError(f"{source}: spike input must be 0/1 (found other values)")
    t_file = x.shape[1]
    n_steps = t_file if steps is None else steps
    if not 1 <= n_steps <= MAX_TIMESTEPS:
        raise NeurosimError(f"{source}: {n_steps} time steps outside 1..{MAX_TIMESTEPS}")
    if n_steps > t_file:
        pad = np.zeros((x.shape[0], n_steps - t_file, *x.shape[2:]), dtype=x.dtype)
        x = np.concatenate([x, pad], axis=1)
    return np.ascontiguousarray(x[:, :n_steps], dtype=np.uint8), n_steps


def save_run(out_dir: Path, net: Netlist, spikes: list, readout: np.ndarray) -> list[Path]:
    """Write ``readout.npy`` (N, n_out: the output layer's ``count * vth + v``, state units) and
    ``layer<i>.npy`` per neuron layer: spikes (N, T, *shape) uint8 in (C, H, W) order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    items = [("readout", readout)] + [(f"layer{i}", s.reshape(*s.shape[:2], *net.layers[i].shape).astype(np.uint8))
                                      for i, s in enumerate(spikes) if not isinstance(net.layers[i], Flatten)]
    for name, arr in items:
        path = out_dir / f"{name}.npy"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
        written.append(path)
    return written
