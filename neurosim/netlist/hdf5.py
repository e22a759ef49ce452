"""Read and write netlists as HDF5 files in lava-dl's netx layout (see ``docs/netlist.md``).

Reading parses every item (types, dtypes, sizes checked before the data is read, so a small
file cannot ask for terabytes; finite numbers) and applies the schema's rules
(:mod:`neurosim.netlist.validate`: parameter ranges, layer-to-layer shape agreement) to each
layer as it is read; the net it returns has passed the ``schema`` profile. Writing applies the
same rules first, so that what :func:`save` writes :func:`load` reads. A problem raises
:class:`~neurosim.errors.NetlistError` naming the file, layer and key.
Nothing stored in a file is ever executed (JSON metadata is parsed, not evaluated), and
nothing outside the file is ever opened: soft and external links, external raw storage
and virtual datasets are refused before they are followed. ``docs/robustness.md`` lists
the limits.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from pathlib import Path
from typing import Any, Callable, Optional, Union

import h5py
import numpy as np

from neurosim.errors import NetlistError, NeurosimError
from neurosim.io.atomic import atomic_path
from neurosim.netlist.schema import (
    INPUT, MAX_DELAY, MAX_LAYERS, MAX_META_BYTES, MAX_NAME_BYTES, MAX_NEURONS, MAX_SYNAPSES,
    MAX_TIMESTEPS, MAX_TOTAL_VALUES, RESETS, SCALE_EXP_MAX, Flatten, Input, Layer, Netlist, Population, Projection,
    Schedule,
)
from neurosim.netlist.neurons import NETX_DENSE_WITHOUT_NEURON, NEURON_TYPES, Neuron
from neurosim.netlist.synapses import KINDS
from neurosim.netlist.validate import (
    META_KEY, ValidationError, check_layer, check_netlist_rules, record, shape_problem, source_problem, validate,
)

PathLike = Union[str, os.PathLike]
INPUT_SHAPE_KEY = "neurosim/input_shape"

#: Limits of reading, on top of the schema's (:mod:`neurosim.netlist.schema`): a larger array
#: must store its data, not only a fill value; arrays of at most SMALL_ARRAY values (scalars,
#: shapes, geometry: bounded by the number of keys) do not count towards the file's total.
MAX_UNSTORED_VALUES = 1 << 16
SMALL_ARRAY = 16

#: What h5py raises for files that are corrupt below the level this module checks.
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, OverflowError,
              UnicodeError, MemoryError)


# ----------------------------------------------------------------------------- writing

def save(net: Netlist, path: PathLike) -> Path:
    """Write ``net`` to ``path`` atomically (temp file + rename) and return the path.

    ``net`` must pass the ``schema`` profile (:func:`~neurosim.netlist.validate.validate`), the
    rules :func:`load` applies: a net that breaks one is refused before anything is written,
    with one line naming the layer and key. An existing file at ``path`` stays untouched unless
    the whole new file was written.
    """
    path = Path(path)
    try:
        validate(net, "schema")
    except ValidationError as exc:
        raise NeurosimError(f"{path}: not written: {exc.keyed()}") from None
    try:
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                for i, layer in enumerate(net.layers):
                    _write_layer(f.create_group(f"layer/{i}"), layer)
                if net.input_shape is not None:
                    f.create_dataset(INPUT_SHAPE_KEY, data=np.asarray(net.input_shape, dtype=np.int64))
                if net.meta:
                    write_string(f, META_KEY, json.dumps(net.meta, sort_keys=True, allow_nan=False), "utf-8")
    except (OSError, RuntimeError) as exc:   # disk full (h5py: RuntimeError on close), no permission, ...
        raise NeurosimError(f"{path}: cannot write the netlist ({exc.__class__.__name__}: "
                            f"{_first_line(exc)})") from None
    return path


def write_string(g: h5py.Group, key: str, text: str, encoding: str = "ascii", vector: bool = False) -> None:
    """``text`` as a fixed-length byte string of exactly its length (``S<n>``; ``vector``: shape
    (1,), as netx stores a layer's ``type``). Names of any length round-trip (lava-dl's own
    ``'S10'`` cuts ``depthwise_conv`` to ``depthwise_``); stock netx reads it
    (``layer['type'][0].decode()``, ``neuron['type'][()].decode()``); and reading it never walks a
    variable-length string's heap (:meth:`_Reader._check_vlen_heap`)."""
    data = text.encode(encoding)
    g.create_dataset(key, data=np.array([data] if vector else data, dtype=f"S{max(len(data), 1)}"))


def _write_layer(g: h5py.Group, layer: Layer) -> None:
    write_string(g, "type", layer.type_name, vector=True)
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    if isinstance(layer, Input):
        g.create_dataset("weight", data=np.float32(layer.weight))
        g.create_dataset("bias", data=np.asarray(layer.bias, dtype=np.float32))
        if layer.synapse is not None:          # an analog input layer: its host synapse
            sub = g.create_group("synapse")
            write_string(sub, "type", layer.synapse.type_name, vector=True)
            sub.create_dataset("inShape", data=np.asarray(layer.sample_shape, dtype=np.int64))
            layer.synapse.write(sub)
    elif isinstance(layer, Flatten):
        _write_source(g, layer.source)
        return
    else:
        first, *more = layer.projections
        _write_source(g, first.source)
        _write_delay(g, first.delay)
        first.synapse.write(g)
        for p, proj in enumerate(more, start=1):
            sub = g.create_group(f"projection/{p}")
            write_string(sub, "type", proj.synapse.type_name, vector=True)
            _write_source(sub, proj.source)
            _write_delay(sub, proj.delay)
            proj.synapse.write(sub)
        if layer.bias is not None:
            g.create_dataset("bias", data=np.asarray(layer.bias, dtype=np.float32))
        if layer.schedule is not None:
            sch = g.create_group("schedule")
            for key in ("scale", "bias"):
                if getattr(layer.schedule, key) is not None:
                    sch.create_dataset(key, data=np.asarray(getattr(layer.schedule, key), dtype=np.float32))
            sch.create_dataset("scaleExp", data=np.int64(layer.schedule.scale_exp))
    _write_neuron(g.create_group("neuron"), layer.neuron)


def _write_source(g: h5py.Group, source: Optional[int]) -> None:
    if source is not None:
        g.create_dataset("source", data=np.int64(source))


def _write_delay(g: h5py.Group, delay: int) -> None:
    """netx's ``delay`` key: the steps a spike waits on top of the synapse's own one (``d - 1``);
    absent for ``d = 1``, so files without delays are written as before."""
    if int(delay) != 1:
        g.create_dataset("delay", data=np.int64(int(delay) - 1))


def _write_neuron(g: h5py.Group, neuron: Neuron) -> None:
    """The kind's parameters (:attr:`~neurosim.netlist.neurons.base.NeuronKind.params`): integers
    as int64 as netx writes them, a fractional value (``float`` mode) as float64; its fixed keys;
    ``reset`` when it is not the kind's default."""
    write_string(g, "type", neuron.type_name)
    for p in neuron.params:
        value = getattr(neuron, p.name)
        if p.written == "nondefault" and value == p.default:
            continue
        g.create_dataset(p.name, data=np.int64(value) if float(value).is_integer() else np.float64(value))
    for key, (value, _) in neuron.fixed_keys.items():
        g.create_dataset(key, data=value)
    if neuron.reset != neuron.default_reset:
        write_string(g, "reset", neuron.reset)


# ----------------------------------------------------------------------------- reading

def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:200] if text else ""


class _Reader:
    """Typed, bounded access to the items of one file, with errors that name the layer and key.

    Keys are paths relative to the group they are read from (``neuron/vThMant`` below a
    layer). Only hard links are followed; every array is checked (dtype, shape, size, the
    file's total budget, where its data lives) before a byte of it is read.
    """

    def __init__(self, path: Path, f: h5py.File) -> None:
        self.path, self.f = path, f
        self.where: tuple[Optional[int], Optional[str]] = (None, None)   # for errors from below
        self.budget = MAX_TOTAL_VALUES

    def error(self, msg: str, layer: Optional[int] = None, key: Optional[str] = None) -> NetlistError:
        return NetlistError(self.path, msg, layer, key)

    def get(self, g: h5py.Group, key: str, layer: Optional[int], *, name_key: bool = True) -> Any:
        """The object at ``key`` below ``g``, or None if absent; refuses anything but hard links.

        ``name_key=False`` leaves the key out of error messages (for a layer's own group).
        """
        self.where = (layer, key if name_key else None)
        obj = g
        parts = key.split("/")
        for n, part in enumerate(parts):
            if not isinstance(obj, h5py.Group):
                raise self.error(f"expected a group, found {_kind(obj)}", layer,
                                 "/".join(parts[:n]) if name_key else None)
            link = obj.get(part, getclass=True, getlink=True)
            if link is None:
                return None
            if link is not h5py.HardLink:
                what = {h5py.SoftLink: "a soft link", h5py.ExternalLink: "an external link"}.get(
                    link, "a user-defined link")
                raise self.error(f"{what}; only plain groups and datasets are read (nothing outside "
                                 "the file is opened)", layer, "/".join(parts[:n + 1]) if name_key else None)
            obj = obj[part]
        return obj

    def group(self, g: h5py.Group, key: str, layer: Optional[int], *,
              name_key: bool = True) -> Optional[h5py.Group]:
        obj = self.get(g, key, layer, name_key=name_key)
        if obj is not None and not isinstance(obj, h5py.Group):
            raise self.error(f"expected a group, found {_kind(obj)}", layer, key if name_key else None)
        return obj

    def dataset(self, g: h5py.Group, key: str, layer: Optional[int]) -> Optional[h5py.Dataset]:
        ds = self.get(g, key, layer)
        if ds is None:
            return None
        if not isinstance(ds, h5py.Dataset):
            raise self.error(f"expected a dataset, found {_kind(ds)}", layer, key)
        if ds.is_virtual or ds.external:
            raise self.error("data stored in other files (external or virtual dataset) is not read",
                             layer, key)
        if ds.shape is None:
            raise self.error("holds no data (empty dataspace)", layer, key)
        return ds

    def array(self, g: h5py.Group, key: str, layer: Optional[int], *, required: bool = True,
              ndim: Optional[tuple[int, ...]] = None, max_size: int = MAX_SYNAPSES, integer: bool = False,
              check_shape: Optional[Callable[[tuple[int, ...]], None]] = None) -> Optional[np.ndarray]:
        """A numeric array of finite values, its declared form checked before reading
        (``check_shape`` gets the declared shape); its values are the schema's to check."""
        ds = self.dataset(g, key, layer)
        if ds is None:
            if required:
                raise self.error("missing", layer, key)
            return None
        kind = ds.dtype.kind
        if kind not in "biuf":
            raise self.error(f"expected numbers, found dtype {ds.dtype}", layer, key)
        if ndim is not None and ds.ndim not in ndim:
            raise self.error(f"expected {' or '.join(map(str, ndim))} dimensions, found shape {ds.shape}",
                             layer, key)
        if ds.shape and min(ds.shape) == 0:
            raise self.error(f"empty array of shape {ds.shape}", layer, key)
        size = math.prod(ds.shape)
        if size > max_size:
            raise self.error(f"{size} values exceed the limit of {max_size}", layer, key)
        if check_shape is not None:
            check_shape(tuple(ds.shape))
        if size > SMALL_ARRAY:
            if size > self.budget:
                raise self.error(f"the file's arrays hold more than {MAX_TOTAL_VALUES} values together",
                                 layer, key)
            self.budget -= size
        if size > MAX_UNSTORED_VALUES and ds.id.get_storage_size() == 0:
            raise self.error(f"declares {size} values but stores none", layer, key)
        as_float = kind == "f" or (kind == "u" and ds.dtype.itemsize >= 8)
        try:
            with np.errstate(over="ignore", invalid="ignore"):   # out-of-range values are refused below
                data = np.asarray(ds[()], dtype=np.float64 if as_float else np.int64)
        except _H5_ERRORS as exc:
            raise self.error(f"unreadable data ({exc.__class__.__name__}: {_first_line(exc)})",
                             layer, key) from None
        if data.shape != ds.shape:
            raise self.error(f"read shape {data.shape}, declared {ds.shape}", layer, key)
        if as_float and not np.all(np.isfinite(data)):
            raise self.error("contains NaN or infinite values", layer, key)
        if integer and as_float and not np.array_equal(data, np.round(data)):
            raise self.error("expected integers", layer, key)
        return data

    def ints(self, g: h5py.Group, key: str, layer: int, n: int, *, default=None) -> tuple[int, ...]:
        """A small integer vector of length ``n`` (a scalar is broadcast)."""
        data = self.array(g, key, layer, required=default is None, ndim=(0, 1), max_size=SMALL_ARRAY,
                          integer=True)
        if data is None:
            return tuple(default)
        data = np.broadcast_to(data, (n,)) if data.ndim == 0 or data.size == 1 else data
        if data.shape != (n,):
            raise self.error(f"expected {n} values, found shape {data.shape}", layer, key)
        return tuple(int(v) for v in data)

    def scalar(self, g: h5py.Group, key: str, layer: Optional[int], *, default=None, lo=None,
               hi=None) -> float:
        """One number (``lo``/``hi``: the bounds of a key the schema has no field for)."""
        data = self.array(g, key, layer, required=default is None, ndim=(0, 1), max_size=1)
        if data is None:
            return default
        value = data.reshape(()).item()
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(f"value {value} outside [{lo}, {hi}]", layer, key)
        return value

    def string(self, g: h5py.Group, key: str, layer: Optional[int], *, max_bytes: int = MAX_NAME_BYTES,
               encoding: str = "ascii") -> str:
        ds = self.dataset(g, key, layer)
        if ds is None:
            raise self.error("missing", layer, key)
        if h5py.check_string_dtype(ds.dtype) is None or ds.size != 1 or ds.ndim > 1:
            raise self.error(f"expected one string, found dtype {ds.dtype} shape {ds.shape}", layer, key)
        if ds.dtype.itemsize > max_bytes and ds.dtype.kind == "S":
            raise self.error(f"string of {ds.dtype.itemsize} bytes exceeds the limit of {max_bytes}",
                             layer, key)
        if ds.dtype.kind == "O":
            self._check_vlen_heap(ds, max_bytes, layer, key)
        try:
            value = ds[()]
        except _H5_ERRORS as exc:
            raise self.error(f"unreadable string ({exc.__class__.__name__}: {_first_line(exc)})",
                             layer, key) from None
        value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogateescape")
        if not isinstance(value, bytes):
            raise self.error(f"expected a string, found {type(value).__name__}", layer, key)
        if len(value) > max_bytes:
            raise self.error(f"string of {len(value)} bytes exceeds the limit of {max_bytes}", layer, key)
        try:
            return value.decode(encoding)
        except UnicodeDecodeError:
            raise self.error(f"not {encoding} text", layer, key) from None


    def _check_vlen_heap(self, ds: h5py.Dataset, max_bytes: int, layer: Optional[int], key: str) -> None:
        """Check the global-heap objects a variable-length string points to, before HDF5 reads them.

        Why not through h5py: every h5py read of a variable-length string (``ds[()]``,
        ``ds.asstr()``, ``ds.id.read``) has libhdf5 load the string's global heap collection
        (``H5HG__cache_heap_deserialize``), which loops forever on a collection whose free-space
        object has size 0 (found by tests/test_fuzz_netlist.py; still so with h5py 3.16.0 and
        HDF5 2.0.0: the read of such a file is killed by a 30 s timeout). The loop is in C, so
        Python cannot interrupt it, and h5py has no call that reads the heap without it. So the
        collection's walk is repeated here, with bounds, and the string's own object must be
        found in it. Files neurosim writes hold fixed-length strings only (:func:`write_string`),
        which have no heap; this guards variable-length strings other writers store.
        """
        def bad(why: str) -> NetlistError:
            return self.error(f"variable-length string with a corrupt heap ({why})", layer, key)

        if self.f.id.get_create_plist().get_sizes() != (8, 8):
            raise bad("offsets or lengths are not 8 bytes")
        offset, n = ds.id.get_offset(), ds.size
        if offset is None or ds.id.get_storage_size() != 16 * n:
            raise self.error("a variable-length string must be stored contiguously in the file "
                             "(or use fixed-length bytes)", layer, key)
        base = self.f.userblock_size
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(offset)
            ids = fh.read(16 * n)
            if len(ids) != 16 * n:
                raise bad("heap reference beyond the end of the file")
            for k in range(n):
                length, addr, index = struct.unpack_from("<IQI", ids, 16 * k)
                if length == 0 and addr == 0:
                    continue                      # an empty string: no heap object
                if length > max_bytes:
                    raise self.error(f"string of {length} bytes exceeds the limit of {max_bytes}", layer, key)
                if index == 0 or addr + base + 16 > size:
                    raise bad("reference outside the file")
                fh.seek(addr + base)
                head = fh.read(16)
                coll = struct.unpack_from("<Q", head, 8)[0]
                if head[:5] != b"GCOL\x01" or not 16 < coll <= size - addr - base:
                    raise bad("not a heap collection")
                fh.seek(addr + base)
                heap = fh.read(coll)
                p, found = 16, None
                while p + 16 <= coll:               # libhdf5's walk (H5HG__cache_heap_deserialize)
                    idx, _, _, obj = struct.unpack_from("<HHIQ", heap, p)
                    need = 16 + -(-obj // 8) * 8 if idx else obj
                    if need <= 0 or p + need > coll:
                        raise bad(f"object {idx} of {obj} bytes at {p} does not fit")
                    if idx == index:
                        found = obj
                    p += need
                if found is None or found < length:
                    raise bad(f"object {index} missing or shorter than {length} bytes")


def _kind(obj: Any) -> str:
    return {h5py.Group: "a group", h5py.Dataset: "a dataset", h5py.Datatype: "a named datatype"}.get(
        type(obj), type(obj).__name__)


class Keys:
    """The keys of one synapse (a layer's root, or ``projection/<p>/`` below it) for
    :meth:`SynapseKind.read <neurosim.netlist.synapses.base.SynapseKind.read>`: typed and
    bounded reads whose errors name the file, the layer and the full key."""

    def __init__(self, r: _Reader, g: h5py.Group, layer: int, prefix: str = "") -> None:
        self.r, self.g, self.layer, self.prefix = r, g, layer, prefix

    def error(self, msg: str, key: Optional[str] = None) -> NetlistError:
        return self.r.error(msg, self.layer, None if key is None else self.prefix + key)

    def has(self, key: str) -> bool:
        return self.r.get(self.g, self.prefix + key, self.layer) is not None

    def array(self, key: str, **kw) -> Optional[np.ndarray]:
        return self.r.array(self.g, self.prefix + key, self.layer, **kw)

    def ints(self, key: str, n: int, **kw) -> tuple[int, ...]:
        return self.r.ints(self.g, self.prefix + key, self.layer, n, **kw)

    def scalar(self, key: str, **kw) -> float:
        return self.r.scalar(self.g, self.prefix + key, self.layer, **kw)


def load(path: PathLike) -> Netlist:
    """Read and validate a netlist file; raise :class:`NetlistError` for anything unusable."""
    path = Path(path)
    if not path.exists():
        raise NetlistError(path, "no such file")
    if not path.is_file():
        raise NetlistError(path, "not a file")
    try:
        f = h5py.File(path, "r")
    except _H5_ERRORS as exc:
        raise NetlistError(path, f"not a readable HDF5 file ({exc.__class__.__name__}: "
                                 f"{_first_line(exc)})") from None
    reader = _Reader(path, f)
    try:
        with f:
            return _read(reader)
    except NetlistError:
        raise
    except _H5_ERRORS as exc:
        # h5py raises these for files that are corrupt below the dataset level.
        layer, key = reader.where
        raise NetlistError(path, f"corrupt HDF5 content ({exc.__class__.__name__}: {_first_line(exc)})",
                           layer, key) from None


def _read(r: _Reader) -> Netlist:
    root = r.group(r.f, "layer", None)
    if root is None:
        raise r.error("no '/layer' group: not a netx/neurosim netlist")
    names = list(root.keys())
    if not names:
        raise r.error("'/layer' holds no layers")
    if len(names) > MAX_LAYERS:
        raise r.error(f"{len(names)} layers exceed the limit of {MAX_LAYERS}")
    if sorted(names, key=lambda s: (len(s), s)) != [str(i) for i in range(len(names))]:
        raise r.error(f"layers must be named 0..{len(names) - 1}, found {sorted(names)[:10]}")
    input_shape = None
    if r.get(r.f, INPUT_SHAPE_KEY, None) is not None:
        input_shape = _shape(r, r.f, INPUT_SHAPE_KEY, None)
    net = Netlist(layers=[], input_shape=input_shape, meta={**_read_simulation(r), **_read_meta(r)})
    offset = 0
    first = r.group(root, "0", 0, name_key=False)
    if r.string(first, "type", 0).strip().lower() == "input" and r.get(first, "neuron", 0) is None:
        # netx's shape-only input layer (SLAYER's Input block without neurons): it declares the
        # shape of the spike input and is not a layer; file index k is netlist layer k - 1
        net.input_shape, offset = _shape(r, first, "shape", 0), 1
        if len(names) == 1:
            raise r.error("the file holds only a shape-only 'input' layer")
    for i in range(offset, len(names)):
        g = r.group(root, str(i), i, name_key=False)
        net.layers.append(_read_layer(r, g, i, net, offset))
        try:
            check_layer(net, i - offset)      # the schema's rules, in file order
        except ValidationError as exc:
            raise r.error(exc.reason, i, exc.key) from None
    r.where = (None, None)
    if net.has_input_layer:
        net.input_shape = None
    try:
        check_netlist_rules(net)
    except ValidationError as exc:
        raise r.error(exc.reason, key=exc.key) from None
    record(net, "schema")
    return net


def _read_source(r: _Reader, g: h5py.Group, i: int, net: Netlist, key: str, offset: int) -> int:
    """The source of a projection or flatten (``key``; absent: the layer before) as a netlist
    index (file index ``i`` is layer ``i - offset``; the shape-only input layer is ``INPUT``),
    checked at once (:func:`~neurosim.netlist.validate.source_problem`): its shape is read on."""
    if r.get(g, key, i) is None:
        return i - 1 - offset if i > offset else INPUT
    value = r.scalar(g, key, i, lo=INPUT)
    if not float(value).is_integer():
        raise r.error(f"expected a layer index, found {value}", i, key)
    src = max(int(value) - offset, INPUT)
    why = source_problem(net, i - offset, src)
    if why:
        raise r.error(why, i, key)
    return src


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a finite number")


def _read_meta(r: _Reader) -> dict[str, Any]:
    """The optional JSON metadata: parsed (never evaluated); its known keys are the schema's
    (:func:`~neurosim.netlist.validate.meta_problem`)."""
    if r.get(r.f, META_KEY, None) is None:
        return {}
    text = r.string(r.f, META_KEY, None, max_bytes=MAX_META_BYTES, encoding="utf-8")
    try:
        meta = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:   # JSONDecodeError is a ValueError
        raise r.error(f"metadata is not JSON ({_first_line(exc)})", key=META_KEY) from None
    if not isinstance(meta, dict):
        raise r.error("metadata must be a JSON object", key=META_KEY)
    return meta


def _read_simulation(r: _Reader) -> dict[str, Any]:
    """lava-dl's tutorial exports write ``simulation/Ts`` (step length) and ``simulation/tSample``
    (steps per sample): kept as ``netx_simulation`` and ``tSample`` as the default ``timesteps``
    (a neurosim ``/neurosim/meta`` overrides it)."""
    if r.group(r.f, "simulation", None) is None:
        return {}
    sim = {}
    for key in ("Ts", "tSample"):
        if r.get(r.f, f"simulation/{key}", None) is not None:
            value = r.scalar(r.f, f"simulation/{key}", None, lo=1 if key == "tSample" else 0, hi=MAX_TIMESTEPS)
            sim[key] = _num(value)
    if not isinstance(sim.get("tSample", 1), int):
        raise r.error(f"expected a whole number of steps, found {sim['tSample']}", key="simulation/tSample")
    return {"netx_simulation": sim, **({"timesteps": sim["tSample"]} if "tSample" in sim else {})}


def _fold_weight_exp(r: _Reader, g: h5py.Group, i: int, pop: Population) -> Population:
    """SLAYER's ``WgtScaleBatchNorm`` exports ``neuron/weight_exp`` = e and the bias ``-mean``; its
    forward pass scales the layer's whole current, bias included, by 2**-e:
    ``u' = (u - mean) / 2**e`` (netx ignores the key). Folded here as the trained model meant:
    e < 0: weights and bias times 2**-e (exact integers); e > 0: weights divided by 2**e where
    that is exact, else a one-row schedule ``scale = 1, scaleExp = e`` (the current's 2**-e,
    rounded half up in ``fixed`` mode), and the bias divided by 2**e (an integer in ``fixed``
    mode only when divisible)."""
    key = "neuron/weight_exp"
    if r.get(g, key, i) is None:
        return pop
    e = _int(r, r.scalar(g, key, i, lo=-SCALE_EXP_MAX, hi=SCALE_EXP_MAX), i, key)
    if e == 0:
        return pop
    if pop.schedule is not None:
        raise r.error("a layer with a schedule cannot also take SLAYER's weight exponent", i, key)
    factor = 2.0 ** -e
    bias = None if pop.bias is None else np.asarray(pop.bias, dtype=np.float64) * factor
    scaled = [np.asarray(p.synapse.weight, dtype=np.float64) * factor for p in pop.projections]
    if e < 0 or all(np.array_equal(w, np.round(w)) for w in scaled):
        projections = [dataclasses.replace(p, synapse=dataclasses.replace(p.synapse, weight=w))
                       for p, w in zip(pop.projections, scaled)]
        return Population(pop.shape, pop.neuron, projections, bias, None)
    return Population(pop.shape, pop.neuron, pop.projections, bias,
                      Schedule(scale=np.ones((1, pop.channels)), scale_exp=e))


def _shape(r: _Reader, g: h5py.Group, key: str, i: Optional[int]) -> tuple[int, ...]:
    """A shape, checked at once (:func:`~neurosim.netlist.validate.shape_problem`): arrays of
    its size are made from it."""
    shape = tuple(int(v) for v in r.array(g, key, i, ndim=(1,), max_size=3, integer=True))
    why = shape_problem(shape)
    if why:
        raise r.error(why, i, key)
    return shape


def _read_neuron(r: _Reader, g: h5py.Group, i: int) -> Neuron:
    """The neuron group: the type and reset names, and the kind's parameters
    (:attr:`~neurosim.netlist.neurons.base.NeuronKind.params`; their ranges are the schema's)."""
    if r.group(g, "neuron", i) is None:
        raise r.error("missing (layers without neurons are not supported)", i, "neuron")
    kind = r.string(g, "neuron/type", i)
    if kind not in NEURON_TYPES:
        raise r.error(f"unknown neuron type '{kind}' (known: {', '.join(sorted(NEURON_TYPES))})",
                      i, "neuron/type")
    cls = NEURON_TYPES[kind]
    reset = cls.default_reset
    if r.get(g, "neuron/reset", i) is not None:
        reset = r.string(g, "neuron/reset", i).strip().lower()
        if reset not in RESETS:
            raise r.error(f"unknown reset '{reset}' (known: {', '.join(RESETS)})", i, "neuron/reset")
    for key, (value, why) in cls.fixed_keys.items():
        if r.scalar(g, f"neuron/{key}", i, default=value) != value:
            raise r.error(why, i, f"neuron/{key}")
    values = {p.name: _num(r.scalar(g, f"neuron/{p.name}", i, default=p.default)) for p in cls.params}
    return cls(reset=reset, **values)


def _num(x: float):
    return int(x) if float(x).is_integer() else float(x)


def _int(r: _Reader, x: float, i: int, key: str) -> int:
    if not float(x).is_integer():
        raise r.error(f"expected an integer, found {x}", i, key)
    return int(x)


def _read_layer(r: _Reader, g: h5py.Group, i: int, net: Netlist, offset: int) -> Layer:
    kind = r.string(g, "type", i).strip().lower()
    known = ["input", "flatten", *KINDS]
    if kind not in known:
        raise r.error(f"unknown layer type '{kind}' (neurosim runs: {', '.join(known)})", i, "type")
    shape = _shape(r, g, "shape", i)
    if kind in ("dense", "flatten") and len(shape) == 3 and sorted(shape)[:2] == [1, 1]:
        shape = (math.prod(shape),)   # SLAYER writes (N, 1, 1) / (1, 1, N) for vectors
    if kind == "input":
        if r.group(g, "synapse", i) is None:
            return Input(shape=shape, neuron=_read_neuron(r, g, i), weight=r.scalar(g, "weight", i, default=1.0),
                         bias=r.scalar(g, "bias", i, default=0.0))
        return _read_analog_input(r, g, i, shape)
    key = "source"
    src = _read_source(r, g, i, net, key, offset)
    stored_source = None if r.get(g, key, i) is None else src
    if src == INPUT and net.input_shape is None:
        net.input_shape = _infer_input_shape(r, g, i, kind)
    if kind == "flatten":
        return Flatten(shape=shape, source=stored_source)
    in_shape = net.shape_of(src)
    projections = [Projection(KINDS[kind].read(Keys(r, g, i), in_shape, shape), stored_source,
                              _read_delay(r, g, i, ""))]
    extra = r.group(g, "projection", i)
    if extra is not None:
        subs = list(extra.keys())
        if len(subs) >= MAX_LAYERS or sorted(subs, key=lambda s: (len(s), s)) != [str(p) for p in range(1, len(subs) + 1)]:
            raise r.error(f"projections must be named 1..{len(subs)}, found {sorted(subs)[:10]}", i, "projection")
        for p in range(1, len(subs) + 1):
            prefix = f"projection/{p}/"
            pkind = r.string(g, prefix + "type", i).strip().lower()
            if pkind not in KINDS:
                raise r.error(f"unknown synapse type '{pkind}' (known: {', '.join(KINDS)})", i, prefix + "type")
            psrc = _read_source(r, g, i, net, prefix + "source", offset)
            if psrc == INPUT and net.input_shape is None:
                raise r.error("a projection from the spike input needs '/neurosim/input_shape'", i, prefix + "source")
            syn = KINDS[pkind].read(Keys(r, g, i, prefix), net.shape_of(psrc), shape)
            projections.append(Projection(syn, None if r.get(g, prefix + "source", i) is None else psrc,
                                          _read_delay(r, g, i, prefix)))
    bias = _read_bias(r, g, i, shape[0])
    neuron = (_read_neuron(r, g, i) if kind != "dense" or r.get(g, "neuron", i) is not None
              else NETX_DENSE_WITHOUT_NEURON)
    return _fold_weight_exp(r, g, i, Population(shape=shape, neuron=neuron, projections=projections, bias=bias,
                                                schedule=_read_schedule(r, g, i)))


def _read_analog_input(r: _Reader, g: h5py.Group, i: int, shape: tuple[int, ...]) -> Input:
    """An input layer with a host synapse (``synapse/type``, ``synapse/inShape`` and the kind's
    keys below ``synapse/``) and a bias of one number or one per channel."""
    kind = r.string(g, "synapse/type", i).strip().lower()
    if kind not in KINDS:
        raise r.error(f"unknown synapse type '{kind}' (known: {', '.join(KINDS)})", i, "synapse/type")
    sample_shape = _shape(r, g, "synapse/inShape", i)
    syn = KINDS[kind].read(Keys(r, g, i, "synapse/"), sample_shape, shape)
    stored = _read_bias(r, g, i, shape[0], broadcast=False)
    bias = 0.0 if stored is None else float(stored) if stored.ndim == 0 else stored
    return Input(shape=shape, neuron=_read_neuron(r, g, i), weight=r.scalar(g, "weight", i, default=1.0),
                 bias=bias, synapse=syn, sample_shape=sample_shape)


def _read_delay(r: _Reader, g: h5py.Group, i: int, prefix: str) -> int:
    """A projection's delay ``d`` from netx's ``delay`` key (``d - 1``: steps on top of the
    synapse's own one; absent: ``d = 1``). netx allows one delay per synapse; a neurosim
    projection has one for all its synapses, so an array must hold one value."""
    key = prefix + "delay"
    extra = r.array(g, key, i, required=False, integer=True)
    if extra is None:
        return 1
    if extra.size and (extra.min() != extra.max()):
        raise r.error(f"delays {int(extra.min())}..{int(extra.max())} differ between synapses; neurosim "
                      "takes one delay per projection", i, key)
    d = int(extra.reshape(-1)[0]) + 1
    if not 1 <= d <= MAX_DELAY:
        raise r.error(f"delay {d - 1} outside [0, {MAX_DELAY - 1}] (steps on top of the synapse's own)", i, key)
    return d


def _infer_input_shape(r: _Reader, g: h5py.Group, i: int, kind: str) -> tuple[int, ...]:
    """A netx file without an input layer or ``/neurosim/input_shape``: a first dense layer
    tells its input size by its weight's shape."""
    ds = r.dataset(g, "weight", i) if kind == "dense" else None
    if ds is None or ds.ndim != 2:
        raise r.error(f"a '{kind}' first layer needs an input layer or '{INPUT_SHAPE_KEY}'", i)
    return (int(ds.shape[1]),)


def _read_schedule(r: _Reader, g: h5py.Group, i: int) -> Optional[Schedule]:
    if r.group(g, "schedule", i) is None:
        return None
    return Schedule(scale=r.array(g, "schedule/scale", i, required=False),
                    bias=r.array(g, "schedule/bias", i, required=False),
                    scale_exp=_num(r.scalar(g, "schedule/scaleExp", i, default=0)))


def _read_bias(r: _Reader, g: h5py.Group, i: int, n: int, broadcast: bool = True) -> Optional[np.ndarray]:
    """``bias``: one value (``()`` or ``(1,)``) or ``(n,)``; one value is spread over the ``n``
    channels, or with ``broadcast=False`` a scalar stays a 0-d array (an input layer's)."""
    def check(s: tuple[int, ...]) -> None:
        if s not in ((), (1,), (n,)):
            raise r.error(f"expected ({n},) values, found {s}", i, "bias")

    bias = r.array(g, "bias", i, required=False, ndim=(0, 1), max_size=MAX_NEURONS, check_shape=check)
    if bias is None or (bias.ndim == 0 and not broadcast):
        return bias
    if bias.size == 1:
        return np.full(n, bias.reshape(-1)[0])
    return bias
