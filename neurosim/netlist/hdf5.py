"""Read and write netlists as HDF5 files in lava-dl's netx layout (see ``docs/netlist.md``).

Reading validates everything against :mod:`neurosim.netlist.schema` before any array is
used: types, dtypes, shapes (checked before the data is read, so a small file cannot ask
for terabytes), finite values, parameter ranges and layer-to-layer shape agreement. A
problem raises :class:`~neurosim.errors.NetlistError` naming the file, layer and key.
Nothing stored in a file is ever executed (JSON metadata is parsed, not evaluated).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import h5py
import numpy as np

from neurosim.errors import NetlistError
from neurosim.io.atomic import atomic_path
from neurosim.netlist.schema import (
    CUBA, DECAY_UNITY, LAYER_TYPES, MAX_NEURONS, MAX_SYNAPSES, NETX_DENSE_WITHOUT_NEURON, NEURON_TYPES,
    RMP, VTH_MAX,
    Conv, Dense, Flatten, Input, Layer, Netlist, Neuron, Pool, conv_output_hw,
)

PathLike = Union[str, os.PathLike]
META_KEY = "neurosim/meta"
INPUT_SHAPE_KEY = "neurosim/input_shape"


# ----------------------------------------------------------------------------- writing

def save(net: Netlist, path: PathLike) -> Path:
    """Write ``net`` to ``path`` atomically (temp file + rename) and return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for i, layer in enumerate(net.layers):
                _write_layer(f.create_group(f"layer/{i}"), layer)
            if net.input_shape is not None:
                f.create_dataset(INPUT_SHAPE_KEY, data=np.asarray(net.input_shape, dtype=np.int64))
            if net.meta:
                f.create_dataset(META_KEY, data=json.dumps(net.meta, sort_keys=True).encode())
    return path


def _write_layer(g: h5py.Group, layer: Layer) -> None:
    g.create_dataset("type", (1,), "S10", [layer.type_name.encode("ascii")])
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    if isinstance(layer, Input):
        g.create_dataset("weight", data=np.float32(layer.weight))
        g.create_dataset("bias", data=np.float32(layer.bias))
    elif isinstance(layer, Dense):
        g.create_dataset("inFeatures", data=np.int64(layer.weight.shape[1]))
        g.create_dataset("outFeatures", data=np.int64(layer.weight.shape[0]))
        g.create_dataset("weight", data=np.asarray(layer.weight, dtype=np.float32))
    elif isinstance(layer, Conv):
        g.create_dataset("inChannels", data=np.int64(layer.weight.shape[1] * layer.groups))
        g.create_dataset("outChannels", data=np.int64(layer.weight.shape[0]))
        g.create_dataset("kernelSize", data=np.asarray(layer.weight.shape[2:], dtype=np.int64))
        g.create_dataset("stride", data=np.asarray(layer.stride, dtype=np.int64))
        g.create_dataset("padding", data=np.asarray(layer.padding, dtype=np.int64))
        g.create_dataset("dilation", data=np.asarray(layer.dilation, dtype=np.int64))
        g.create_dataset("groups", data=np.int64(layer.groups))
        g.create_dataset("weight", data=np.asarray(layer.weight, dtype=np.float32))
    elif isinstance(layer, Pool):
        g.create_dataset("kernelSize", data=np.asarray(layer.kernel_size, dtype=np.int64))
        g.create_dataset("stride", data=np.asarray(layer.stride, dtype=np.int64))
        g.create_dataset("padding", data=np.asarray(layer.padding, dtype=np.int64))
        g.create_dataset("dilation", data=np.asarray((1, 1), dtype=np.int64))
        g.create_dataset("weight",
                         data=np.asarray(layer.weight, dtype=np.float32).reshape(1, 1, *layer.kernel_size))
    if isinstance(layer, (Dense, Conv)) and layer.bias is not None:
        g.create_dataset("bias", data=np.asarray(layer.bias, dtype=np.float32))
    if not isinstance(layer, Flatten):
        _write_neuron(g.create_group("neuron"), layer.neuron)


def _write_neuron(g: h5py.Group, neuron: Neuron) -> None:
    g.create_dataset("type", data=neuron.type_name.encode("ascii"))
    if isinstance(neuron, CUBA):
        g.create_dataset("vThMant", data=np.int64(neuron.vThMant))
        g.create_dataset("iDecay", data=np.int64(neuron.iDecay))
        g.create_dataset("vDecay", data=np.int64(neuron.vDecay))
        g.create_dataset("refDelay", data=np.int64(neuron.refDelay))
        g.create_dataset("gradedSpike", data=False)
    else:
        g.create_dataset("vThMant", data=np.int64(neuron.vThMant))
        g.create_dataset("vDecay", data=np.int64(neuron.vDecay))


# ----------------------------------------------------------------------------- reading

class _Reader:
    """Typed, bounded access to the datasets of one file, with errors that name the key."""

    def __init__(self, path: Path, f: h5py.File) -> None:
        self.path, self.f = path, f

    def error(self, msg: str, layer: Optional[int] = None, key: Optional[str] = None) -> NetlistError:
        return NetlistError(self.path, msg, layer, key)

    def dataset(self, g: h5py.Group, key: str, layer: Optional[int]) -> Optional[h5py.Dataset]:
        if key not in g:
            return None
        ds = g[key]
        if not isinstance(ds, h5py.Dataset):
            raise self.error("expected a dataset, found a group", layer, key)
        return ds

    def array(self, g: h5py.Group, key: str, layer: Optional[int], *, required: bool = True,
              ndim: Optional[tuple[int, ...]] = None, max_size: int = MAX_SYNAPSES,
              integer: bool = False) -> Optional[np.ndarray]:
        ds = self.dataset(g, key, layer)
        if ds is None:
            if required:
                raise self.error("missing", layer, key)
            return None
        if ds.dtype.kind not in "biuf":
            raise self.error(f"expected numbers, found dtype {ds.dtype}", layer, key)
        if ndim is not None and ds.ndim not in ndim:
            raise self.error(f"expected {' or '.join(map(str, ndim))} dimensions, found shape {ds.shape}",
                             layer, key)
        if ds.shape and min(ds.shape) == 0:
            raise self.error(f"empty array of shape {ds.shape}", layer, key)
        size = int(np.prod(ds.shape, dtype=np.int64)) if ds.shape else 1
        if size > max_size:
            raise self.error(f"{size} values exceed the limit of {max_size}", layer, key)
        try:
            data = np.asarray(ds[()], dtype=np.float64 if ds.dtype.kind == "f" else np.int64)
        except (OSError, ValueError, TypeError) as exc:
            raise self.error(f"unreadable data ({exc})", layer, key) from None
        if not np.all(np.isfinite(data)):
            raise self.error("contains NaN or infinite values", layer, key)
        if integer and not np.array_equal(data, np.round(data)):
            raise self.error("expected integers", layer, key)
        return data

    def ints(self, g: h5py.Group, key: str, layer: int, n: int, *, default=None,
             lo: int = 0, hi: int = 1 << 20) -> tuple[int, ...]:
        """A small integer vector of length ``n`` (a scalar is broadcast), each in [lo, hi]."""
        data = self.array(g, key, layer, required=default is None, ndim=(0, 1), max_size=16, integer=True)
        if data is None:
            return tuple(default)
        data = np.broadcast_to(data, (n,)) if data.ndim == 0 or data.size == 1 else data
        if data.shape != (n,):
            raise self.error(f"expected {n} values, found shape {data.shape}", layer, key)
        if data.min() < lo or data.max() > hi:
            raise self.error(f"values {data.tolist()} outside [{lo}, {hi}]", layer, key)
        return tuple(int(v) for v in data)

    def scalar(self, g: h5py.Group, key: str, layer: int, *, default=None, lo=None, hi=None) -> float:
        data = self.array(g, key, layer, required=default is None, ndim=(0, 1), max_size=1)
        if data is None:
            return default
        value = data.reshape(()).item()
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(f"value {value} outside [{lo}, {hi}]", layer, key)
        return value

    def string(self, g: h5py.Group, key: str, layer: int) -> str:
        ds = self.dataset(g, key, layer)
        if ds is None:
            raise self.error("missing", layer, key)
        if ds.dtype.kind not in "SOU" or ds.size != 1 or ds.ndim > 1:
            raise self.error(f"expected one string, found dtype {ds.dtype} shape {ds.shape}", layer, key)
        try:
            value = ds[()]
            value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
            return value.decode("ascii") if isinstance(value, bytes) else str(value)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise self.error(f"unreadable string ({exc})", layer, key) from None


def load(path: PathLike) -> Netlist:
    """Read and validate a netlist file; raise :class:`NetlistError` for anything unusable."""
    path = Path(path)
    if not path.exists():
        raise NetlistError(path, "no such file")
    if not path.is_file():
        raise NetlistError(path, "not a file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise NetlistError(path, f"not a readable HDF5 file ({exc.__class__.__name__}: "
                                 f"{str(exc).splitlines()[0][:200]})") from None
    try:
        with f:
            return _read(_Reader(path, f))
    except NetlistError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        # h5py raises these for files that are corrupt below the dataset level.
        raise NetlistError(path, f"corrupt HDF5 content ({exc.__class__.__name__}: "
                                 f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None


def _read(r: _Reader) -> Netlist:
    if "layer" not in r.f or not isinstance(r.f["layer"], h5py.Group):
        raise r.error("no '/layer' group: not a netx/neurosim netlist")
    names = list(r.f["layer"].keys())
    if not names:
        raise r.error("'/layer' holds no layers")
    if sorted(names, key=lambda s: (len(s), s)) != [str(i) for i in range(len(names))]:
        raise r.error(f"layers must be named 0..{len(names) - 1}, found {sorted(names)[:10]}")
    input_shape = None
    if INPUT_SHAPE_KEY in r.f:
        input_shape = tuple(int(v) for v in r.array(r.f, INPUT_SHAPE_KEY, None, ndim=(1,),
                                                     max_size=3, integer=True))
    meta: dict[str, Any] = {}
    if META_KEY in r.f:
        try:
            meta = json.loads(r.string(r.f, META_KEY, None))
        except json.JSONDecodeError as exc:
            raise r.error(f"metadata is not JSON ({exc})", key=META_KEY) from None
        if not isinstance(meta, dict):
            raise r.error("metadata must be a JSON object", key=META_KEY)
    layers: list[Layer] = []
    prev: Optional[tuple[int, ...]] = tuple(input_shape) if input_shape else None
    for i in range(len(names)):
        layer = _read_layer(r, r.f[f"layer/{i}"], i, prev)
        layers.append(layer)
        prev = tuple(layer.shape)
    net = Netlist(layers=layers, input_shape=None if isinstance(layers[0], Input) else input_shape, meta=meta)
    if not isinstance(layers[0], Input) and net.input_shape is None:
        if isinstance(layers[0], Dense):
            net.input_shape = (int(layers[0].weight.shape[1]),)
        else:
            raise r.error("the first layer is not 'input' and the file does not store "
                          f"'{INPUT_SHAPE_KEY}'", layer=0)
    if any(isinstance(l, Input) for l in layers[1:]):
        raise r.error("an 'input' layer may only be layer 0")
    return net


def _read_shape(r: _Reader, g: h5py.Group, i: int) -> tuple[int, ...]:
    shape = r.array(g, "shape", i, ndim=(1,), max_size=3, integer=True)
    if shape.size not in (1, 3) or shape.min() < 1:
        raise r.error(f"expected (N,) or (C, H, W) with positive sizes, found {shape.tolist()}", i, "shape")
    shape = tuple(int(v) for v in shape)
    if int(np.prod(shape)) > MAX_NEURONS:
        raise r.error(f"{int(np.prod(shape))} neurons exceed the limit of {MAX_NEURONS}", i, "shape")
    return shape


def _read_neuron(r: _Reader, g: h5py.Group, i: int) -> Neuron:
    if "neuron" not in g or not isinstance(g["neuron"], h5py.Group):
        raise r.error("missing (layers without neurons are not supported)", i, "neuron")
    n = g["neuron"]
    kind = r.string(n, "type", i)
    if kind not in NEURON_TYPES:
        raise r.error(f"unknown neuron type '{kind}' (known: {', '.join(sorted(NEURON_TYPES))})",
                      i, "neuron/type")
    vth = r.scalar(n, "vThMant", i, lo=0, hi=VTH_MAX + 1)   # netx itself writes 2**17
    vdecay = r.scalar(n, "vDecay", i, default=0, lo=0, hi=DECAY_UNITY)
    if NEURON_TYPES[kind] is RMP:
        return RMP(vThMant=_num(vth), vDecay=_int(r, vdecay, i, "neuron/vDecay"))
    if "gradedSpike" in n:
        graded = r.dataset(n, "gradedSpike", i)
        if graded.size != 1 or bool(np.asarray(graded[()]).reshape(-1)[0]):
            raise r.error("graded spikes are not supported", i, "neuron/gradedSpike")
    idecay = r.scalar(n, "iDecay", i, default=DECAY_UNITY, lo=0, hi=DECAY_UNITY)
    ref = r.scalar(n, "refDelay", i, default=1, lo=0, hi=1 << 16)
    return CUBA(vThMant=_num(vth), iDecay=_int(r, idecay, i, "neuron/iDecay"),
                vDecay=_int(r, vdecay, i, "neuron/vDecay"), refDelay=int(ref))


def _num(x: float):
    return int(x) if float(x).is_integer() else float(x)


def _int(r: _Reader, x: float, i: int, key: str) -> int:
    if not float(x).is_integer():
        raise r.error(f"expected an integer, found {x}", i, key)
    return int(x)


def _read_layer(r: _Reader, g: h5py.Group, i: int, prev: Optional[tuple[int, ...]]) -> Layer:
    if not isinstance(g, h5py.Group):
        raise r.error("expected a group", i)
    kind = r.string(g, "type", i).strip().lower()
    if kind not in LAYER_TYPES:
        raise r.error(f"unknown layer type '{kind}' (known: {', '.join(LAYER_TYPES)})", i, "type")
    shape = _read_shape(r, g, i)
    if kind in ("dense", "flatten") and len(shape) == 3 and sorted(shape)[:2] == [1, 1]:
        shape = (int(np.prod(shape)),)   # SLAYER writes (N, 1, 1) / (1, 1, N) for vectors
    if kind == "input":
        return Input(shape=shape, neuron=_read_neuron(r, g, i),
                     weight=r.scalar(g, "weight", i, default=1.0),
                     bias=r.scalar(g, "bias", i, default=0.0))
    if prev is None and kind != "dense":
        raise r.error(f"a '{kind}' first layer needs an input layer or '{INPUT_SHAPE_KEY}'", i)
    if kind == "flatten":
        n = int(np.prod(prev))
        if shape != (n,):
            raise r.error(f"flatten of {prev} gives ({n},), found {shape}", i, "shape")
        return Flatten(shape=shape)
    if kind == "dense":
        weight = r.array(g, "weight", i, ndim=(1, 2))
        n_in = int(np.prod(prev)) if prev is not None else None
        if weight.ndim == 1:
            if weight.size % shape[0]:
                raise r.error(f"{weight.size} weights do not divide into {shape[0]} outputs", i, "weight")
            weight = weight.reshape(shape[0], -1)
        if len(shape) != 1 or weight.shape[0] != shape[0] or (n_in is not None and weight.shape[1] != n_in):
            raise r.error(f"weight shape {weight.shape} does not match (out={shape}, in={n_in} from {prev})",
                          i, "weight")
        bias = _read_bias(r, g, i, shape[0])
        neuron = _read_neuron(r, g, i) if "neuron" in g else NETX_DENSE_WITHOUT_NEURON
        return Dense(shape=shape, weight=weight, neuron=neuron, bias=bias)
    if len(prev) != 3 or len(shape) != 3:
        raise r.error(f"'{kind}' needs (C, H, W) shapes, got input {prev} and shape {shape}", i, "shape")
    stride = r.ints(g, "stride", i, 2, default=(1, 1) if kind == "conv" else None, lo=1, hi=1 << 10)
    padding = r.ints(g, "padding", i, 2, default=(0, 0), lo=0, hi=1 << 10)
    dilation = r.ints(g, "dilation", i, 2, default=(1, 1), lo=1, hi=1 << 10)
    if kind == "conv":
        weight = r.array(g, "weight", i, ndim=(4, 5))
        if weight.ndim == 5:
            if weight.shape[4] != 1:
                raise r.error(f"a 5-D conv weight must end in 1, found {weight.shape}", i, "weight")
            weight = weight[..., 0]
        groups = r.ints(g, "groups", i, 1, default=(1,), lo=1, hi=1 << 16)[0]
        if prev[0] % groups or weight.shape[0] % groups or weight.shape[1] * groups != prev[0]:
            raise r.error(f"weight {weight.shape} with groups={groups} does not take {prev[0]} input "
                          "channels", i, "weight")
        kernel = tuple(int(k) for k in weight.shape[2:])
        if "kernelSize" in g and r.ints(g, "kernelSize", i, 2, lo=1) != kernel:
            raise r.error(f"kernelSize disagrees with weight shape {weight.shape}", i, "kernelSize")
        out_hw = conv_output_hw(prev[1:], kernel, stride, padding, dilation)
        expect = (weight.shape[0], *out_hw)
        if shape != expect:
            raise r.error(f"conv of {prev} gives {expect}, found {shape}", i, "shape")
        bias = _read_bias(r, g, i, shape[0])
        return Conv(shape=shape, weight=weight, neuron=_read_neuron(r, g, i), stride=stride,
                    padding=padding, dilation=dilation, groups=groups, bias=bias)
    # pool
    weight = r.array(g, "weight", i, ndim=(0, 2, 4, 5), max_size=1 << 12)
    if weight.ndim == 0:
        kernel = r.ints(g, "kernelSize", i, 2, lo=1, hi=1 << 6)
        weight = np.full(kernel, weight.item())
    elif weight.ndim >= 4:
        if weight.shape[:2] != (1, 1) or weight.shape[4:] not in ((), (1,)):
            raise r.error(f"expected one (kh, kw) kernel shared by all channels, found {weight.shape}",
                          i, "weight")
        weight = weight[0, 0].reshape(weight.shape[2:4])
    if dilation != (1, 1):
        raise r.error("dilated pooling is not supported", i, "dilation")
    expect = (prev[0], *conv_output_hw(prev[1:], weight.shape, stride, padding))
    if shape != expect:
        raise r.error(f"pool of {prev} gives {expect}, found {shape}", i, "shape")
    return Pool(shape=shape, weight=weight, neuron=_read_neuron(r, g, i), stride=stride, padding=padding)


def _read_bias(r: _Reader, g: h5py.Group, i: int, n: int) -> Optional[np.ndarray]:
    bias = r.array(g, "bias", i, required=False, ndim=(0, 1), max_size=MAX_NEURONS)
    if bias is None:
        return None
    if bias.size == 1:
        return np.full(n, bias.reshape(-1)[0])
    if bias.shape != (n,):
        raise r.error(f"expected ({n},) values, found {bias.shape}", i, "bias")
    return bias
