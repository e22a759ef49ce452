"""Property-based fuzzing of the netlist reader (hypothesis).

Valid netlists are mutated (keys dropped, wrong dtypes, wrong or huge shapes, NaN/Inf,
extreme values, groups for datasets and back, links, renamed layers, bad metadata,
truncated files, flipped bytes). For every case, :func:`neurosim.netlist.hdf5.load`
either returns a netlist that the reference simulator runs (both modes, 3 steps) without
an exception other than :class:`NeurosimError`, or refuses the file with
:class:`NeurosimError` naming it. Nothing else may escape, nothing may hang (a watchdog
aborts the process) and no file handle, HDF5 object or temp file may leak.

``NEUROSIM_FUZZ_SCALE=10`` multiplies the number of cases (default: ~1,800 files).
Run with ``--hypothesis-show-statistics`` to see the outcomes per test.
"""
from __future__ import annotations

import collections
import faulthandler
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from neurosim.errors import NetlistError, NeurosimError
from neurosim.metrics.synops import ann_macs, synops_per_layer
from neurosim.netlist import hdf5
from neurosim.netlist import CUBA, Flatten, Input, Netlist, RMP, conv, dense, pool
from neurosim.sim.simulator import Simulator
from tests.conftest import ROOT, SHARED, analog_net, small_conv_net
from tests.dag_nets import random_dag

SCALE = float(os.environ.get("NEUROSIM_FUZZ_SCALE", "1"))
WATCHDOG_S = 600          # a hang anywhere in a fuzz test aborts the run with a traceback
MAX_RSS_GROWTH = 1 << 30  # peak resident memory may not grow by more than this during a fuzz test


def fuzz_settings(n: int) -> settings:
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# ----------------------------------------------------------------------------- valid bases

def cuba_dense_net() -> Netlist:
    rng = np.random.default_rng(1)
    return Netlist([
        Input((20,), CUBA(80, iDecay=4096, vDecay=1024), weight=64.0, bias=0.0),
        dense((16,), 2 * rng.integers(-50, 80, (16, 20)).astype(float), CUBA(60, iDecay=2048, vDecay=512)),
        dense((4,), 2 * rng.integers(-50, 80, (4, 16)).astype(float), CUBA(60, iDecay=4096, vDecay=0),
              bias=rng.integers(-3, 3, 4).astype(float)),
    ])


def grouped_net() -> Netlist:
    """Input(2,7,7) -> grouped strided conv -> pool -> flatten -> dense, with metadata."""
    rng = np.random.default_rng(2)
    return Netlist([
        Input((2, 7, 7), RMP(90), weight=100.0, bias=1.0),
        conv((4, 4, 4), 2 * rng.integers(-40, 60, (4, 1, 3, 3)).astype(float), RMP(80), stride=(2, 2),
             padding=(1, 1), groups=2, bias=rng.integers(-5, 5, 4).astype(float)),
        pool((4, 2, 2), np.full((2, 2), 2.0), CUBA(5, iDecay=4096, vDecay=100)),
        Flatten((16,)),
        dense((3,), 2 * rng.integers(-60, 60, (3, 16)).astype(float), RMP(70)),
    ], meta={"dataset": "digits", "timesteps": 8, "ann_accuracy": 0.5})


def spike_input_net() -> Netlist:
    """A net without an input layer (spike input, ``neurosim/input_shape``)."""
    rng = np.random.default_rng(3)
    return Netlist([dense((6,), rng.integers(-4, 5, (6, 10)).astype(float), CUBA(3)),
                    dense((2,), rng.integers(-4, 5, (2, 6)).astype(float), RMP(3))], input_shape=(10,))


BASES = {"conv_rmp": lambda: small_conv_net(), "conv_cuba": lambda: small_conv_net(neuron=CUBA),
         "dense_cuba": cuba_dense_net, "grouped": grouped_net, "spike_input": spike_input_net,
         # netlist v2: residual joins (extra projections, sources), schedules, both resets
         "dag_current": lambda: random_dag(1)[0], "dag_spikes": lambda: random_dag(6)[0],
         "analog_input": analog_net}      # an input layer with a host conv and a per-channel bias


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("bases")
    out = {}
    for name, make in BASES.items():
        path = hdf5.save(make(), folder / f"{name}.net")
        hdf5.load(path)                      # every base is valid
        out[name] = path.read_bytes()
    # one base with netx's alternative forms: 5-D conv weight, scalar pool weight + kernelSize
    path = folder / "netx_forms.net"
    path.write_bytes(out["conv_rmp"])
    with h5py.File(path, "r+") as f:
        w = f["layer/1/weight"][()]
        del f["layer/1/weight"]
        f["layer/1/weight"] = w[..., None]
        del f["layer/2/weight"]
        f["layer/2/weight"] = np.float32(2.0)
        for key, shape in (("layer/3/shape", [36, 1, 1]), ("layer/4/shape", [1, 1, 5])):   # SLAYER vectors
            del f[key]
            f[key] = np.array(shape)
        del f["layer/4/neuron"]                 # netx: a dense layer without neurons is an integrator
    net = hdf5.load(path)
    assert net.layers[3].shape == (36,) and net.layers[4].shape == (5,) and net.layers[4].neuron.iDecay == 0
    out["netx_forms"] = path.read_bytes()
    # netlists written by lava-dl itself, where ../shared is present (small ones only)
    for name in ("tinynet", "oxford"):
        ref = SHARED / "netx-reference" / name / "network.net"
        if ref.exists():
            hdf5.load(ref)
            out[f"lava-dl_{name}"] = ref.read_bytes()
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ----------------------------------------------------------------------------- the property

OUTCOMES: collections.Counter = collections.Counter()


def check_file(path: Path) -> str:
    """Load ``path``; if it loads, run it. Return the outcome; any other exception fails the test."""
    outcome = _check_file(path)
    OUTCOMES[outcome] += 1
    return outcome


def _check_file(path: Path) -> str:
    try:
        net = hdf5.load(path)
    except NeurosimError as exc:
        message = str(exc)
        assert str(path) in message, message          # the error names the file
        assert "\n" not in message, message           # ... in one line
        assert isinstance(exc, NetlistError)
        return "refused"
    # what consumers of the metadata rely on (neurosim run: data set name, default T, ANN accuracy)
    meta = net.meta
    assert isinstance(meta, dict)
    assert meta.get("dataset") is None or isinstance(meta["dataset"], str)
    assert meta.get("timesteps") is None or (type(meta["timesteps"]) is int and 1 <= meta["timesteps"] <= 1 << 16)
    assert meta.get("ann_accuracy") is None or (type(meta["ann_accuracy"]) in (int, float)
                                                and 0 <= meta["ann_accuracy"] <= 1)
    rng = np.random.default_rng(0)
    if isinstance(net.layers[0], Input):
        assert math.prod(net.layers[0].shape) <= 1 << 24 and math.prod(net.sample_shape) <= 1 << 24
        x = rng.random((1, *net.sample_shape))                          # constant input current
    else:
        assert net.input_shape is not None and math.prod(net.input_shape) <= 1 << 24
        x = (rng.random((1, 3, *net.input_shape)) < 0.5).astype(float)  # input spikes, time first
    outcomes = []
    for mode in ("float", "fixed"):
        try:
            with warnings.catch_warnings():   # an invalid cast or overflow would be silent garbage
                warnings.simplefilter("error", RuntimeWarning)
                res = Simulator(net, mode).run(x, 3)
        except NeurosimError:
            outcomes.append(f"{mode} refused")
            continue
        assert res.readout.shape == (1, math.prod(net.layers[net.output_layer].shape))
        assert np.all(np.isfinite(res.readout)), f"{mode}: non-finite readout from a netlist that loaded"
        synops_per_layer(net, res.counts)
        outcomes.append(f"{mode} ran")
    ann_macs(net)
    return "loaded, " + ", ".join(outcomes)


def _resources() -> dict:
    return {"fds": len(os.listdir("/proc/self/fd")),
            "h5_objects": h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_ALL)}


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_guarded(test, folder: Path) -> None:
    """Run a hypothesis test under a watchdog; then check nothing leaked."""
    OUTCOMES.clear()
    before = _resources()
    _reset_peak_rss()
    rss0 = _peak_rss()
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    t0 = time.time()
    try:
        test()
    finally:
        faulthandler.cancel_dump_traceback_later()
    after = _resources()
    assert after == before, f"leak: {before} -> {after}"
    assert not list(folder.glob(".*.tmp")), "temp files left behind"
    assert _peak_rss() - rss0 < MAX_RSS_GROWTH, f"peak memory grew by {(_peak_rss() - rss0) >> 20} MiB"
    summary = {"test": test.__name__, "cases": sum(OUTCOMES.values()), "seconds": round(time.time() - t0, 1),
               "outcomes": dict(OUTCOMES), "leak_checks": {**after, "temp_files": 0,
                                                           "peak_rss_growth_mib": (_peak_rss() - rss0) >> 20}}
    print(json.dumps(summary))
    if os.environ.get("NEUROSIM_FUZZ_REPORT"):
        with open(os.environ["NEUROSIM_FUZZ_REPORT"], "a") as fh:
            fh.write(json.dumps(summary) + "\n")


# ----------------------------------------------------------------------------- mutations

SPECIAL_INTS = [-2 ** 63, -2 ** 31, -(1 << 24), -1, 0, 1, 2, 3, 7, 4095, 4096, 4097, 131071, 131072,
                1 << 24, (1 << 24) + 1, 2 ** 31, 2 ** 40, 2 ** 62, 2 ** 63 - 1]
SPECIAL_FLOATS = [float("nan"), float("inf"), -float("inf"), -0.0, 0.5, -0.5, 1e-300, 1e300, 3.4e38,
                  2.0 ** 31, -2.0 ** 31 - 1, 1.5, 1e-45]
HUGE_DIMS = [1, 2, 3, 5, 36, 1 << 8, 1 << 12, 1 << 14, 1 << 16, 1 << 20, 1 << 28, 1 << 31, 1 << 40, 1 << 62]


def _wrong_dtype_data(kind: str, shape: tuple, f: h5py.File):
    """(data, dtype) of a dataset of ``shape`` with an unusual dtype."""
    n = math.prod(shape)
    if kind == "bytes":
        return np.full(shape, b"conv", dtype="S10"), None
    if kind == "vlen_str":
        return np.array(["RMP"] * n, dtype=object).reshape(shape), h5py.string_dtype()
    if kind == "vlen_bytes":
        return np.array([b"\xff\xfe"] * n, dtype=object).reshape(shape), h5py.string_dtype("ascii")
    if kind == "bool":
        return np.ones(shape, dtype=bool), None
    if kind in ("complex64", "complex128", "float16", "int8", "uint8", "uint16", "uint64", ">f8", ">i4",
                "longdouble"):
        dt = np.dtype(np.longdouble if kind == "longdouble" else kind)
        data = np.full(shape, 2 ** 64 - 1 if kind == "uint64" else 3, dtype=dt)
        return data, None
    if kind == "vlen_int":
        data = np.empty(n, dtype=object)
        for k in range(n):
            data[k] = np.arange(k % 3, dtype=np.int32)
        return data.reshape(shape), h5py.vlen_dtype(np.int32)
    if kind == "compound":
        return np.zeros(shape, dtype=[("a", "<f4"), ("b", "<i8")]), None
    if kind == "enum":
        return np.ones(shape, dtype=np.int8), h5py.enum_dtype({"RED": 0, "GREEN": 1}, basetype="i1")
    if kind == "subarray":
        return np.ones(shape, dtype=np.dtype(("<i8", (2,)))), None
    if kind == "opaque":
        return np.zeros(shape, dtype="V8"), None
    if kind == "reference":
        data = np.empty(n, dtype=h5py.ref_dtype)
        for k in range(n):
            data[k] = f["layer"].ref if "layer" in f else f.ref
        return data.reshape(shape), h5py.ref_dtype
    if kind == "empty":
        return h5py.Empty("f4"), None
    raise AssertionError(kind)


WRONG_DTYPES = ["bytes", "vlen_str", "vlen_bytes", "bool", "complex64", "complex128", "float16", "int8", "uint8",
                "uint16", "uint64", ">f8", ">i4", "longdouble", "vlen_int", "compound", "enum", "subarray",
                "opaque", "reference", "empty"]

META_TEXTS = [
    b"", b"{", b"null", b"[]", b"[1, 2]", b"NaN", b'{"a": NaN}', b'{"a": Infinity}', b'{"timesteps": "abc"}',
    b'{"timesteps": 1e999}', b'{"timesteps": 0}', b'{"timesteps": 10000000}', b'{"timesteps": true}',
    b'{"timesteps": 2.5}', b'{"ann_accuracy": "x"}', b'{"ann_accuracy": 2}', b'{"ann_accuracy": null}',
    b'{"dataset": 5}', b'{"dataset": ["digits"]}', b"[" * 100_000, b"\xff\xfe{}", b'{"a": ' + b"1" * 5000 + b"}",
    b'{"dataset": "digits", "timesteps": 16, "ann_accuracy": 0.9}', b'{"__class__": "os.system", "x": "rm -rf"}',
    b'{"x": "' + b"a" * (1 << 20) + b'"}',
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["dataset", "timesteps", "ann_accuracy", "x"]), inner, max_size=4),
    max_leaves=10)


def _items(f: h5py.File) -> list[tuple[str, bool]]:
    """(name, is_dataset) of every object reachable through hard links."""
    out: list[tuple[str, bool]] = []
    f.visititems(lambda name, obj: out.append((name, isinstance(obj, h5py.Dataset))))
    return out


def _small_shape(ds) -> tuple:
    """The dataset's shape if it is small enough to materialise here, else (3,) (after a 'huge' op)."""
    shape = ds.shape if isinstance(ds, h5py.Dataset) and ds.shape is not None else ()
    return shape if math.prod(shape) <= 1 << 16 else (3,)


def _small_data(ds):
    """The dataset's values if small and numeric-or-string, else None (never reads a huge dataset)."""
    if not isinstance(ds, h5py.Dataset) or ds.shape is None or math.prod(ds.shape) > 1 << 16:
        return None
    return ds[()]


def _replace(f: h5py.File, name: str, **kwargs) -> None:
    if name in f or f.get(name, getlink=True) is not None:
        del f[name]
    f.create_dataset(name, **kwargs)


def _numbers(draw, shape, integer: bool):
    pool = SPECIAL_INTS if integer else SPECIAL_FLOATS
    values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
    flat = np.array([values[k % len(values)] for k in range(math.prod(shape))],
                    dtype=np.float64 if not integer or max(map(abs, values)) >= 2 ** 63 else np.int64)
    return flat.reshape(shape)


def mutate(f: h5py.File, op: str, draw) -> str:
    """Apply one mutation ``op`` to the open file; return a short description."""
    items = _items(f)
    datasets = [n for n, is_ds in items if is_ds] or ["layer/0/shape"]
    groups = [n for n, is_ds in items if not is_ds] or ["layer"]
    everything = [n for n, _ in items] or ["layer"]
    if op == "drop":
        name = draw(st.sampled_from(everything))
        del f[name]
        return f"drop {name}"
    if op == "dtype":
        name, kind = draw(st.sampled_from(datasets)), draw(st.sampled_from(WRONG_DTYPES))
        shape = draw(st.sampled_from([_small_shape(f[name]), (), (1,)]))
        data, dtype = _wrong_dtype_data(kind, shape, f)
        _replace(f, name, data=data, dtype=dtype)
        return f"dtype {name} {kind} {shape}"
    if op == "shape":
        name = draw(st.sampled_from(datasets))
        shape = tuple(draw(st.lists(st.integers(0, 7), max_size=5)))
        old = f[name]
        dtype = old.dtype if old.dtype.kind in "biuf" else np.float32
        data = (np.arange(math.prod(shape)) % 5 + 1).reshape(shape).astype(dtype)
        _replace(f, name, data=data)
        return f"shape {name} {shape}"
    if op == "reshape":
        name = draw(st.sampled_from(datasets))
        old = _small_data(f[name])
        if not isinstance(old, np.ndarray) or old.size < 1:
            return "reshape (scalar or huge: no-op)"
        shape = draw(st.sampled_from([(old.size,), (1, old.size), (old.size, 1), old.shape + (1,),
                                      (1,) + old.shape, ()] if old.size == 1 else
                                     [(old.size,), (1, old.size), (old.size, 1), old.shape + (1,),
                                      (1,) + old.shape]))
        _replace(f, name, data=old.reshape(shape))
        return f"reshape {name} {shape}"
    if op == "nonfinite":
        name = draw(st.sampled_from(datasets))
        old = f[name]
        shape = _small_shape(old)
        data = np.ones(shape, dtype=np.float64)
        if old.dtype.kind in "biuf" and shape == old.shape:
            data = np.asarray(_small_data(old), dtype=np.float64)
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        if data.ndim == 0:
            data = np.float64(value)
        elif draw(st.booleans()):
            data.flat[draw(st.integers(0, data.size - 1))] = value
        else:
            data[...] = value
        with np.errstate(over="ignore"):                 # float16 overflow gives inf: wanted here
            data = data.astype(draw(st.sampled_from([np.float32, np.float64, np.float16])))
        _replace(f, name, data=data)
        return f"nonfinite {name}"
    if op == "value":
        name = draw(st.sampled_from(datasets))
        _replace(f, name, data=_numbers(draw, _small_shape(f[name]), integer=draw(st.booleans())))
        return f"value {name}"
    if op == "huge":
        name = draw(st.sampled_from(datasets + [g + "/weight" for g in groups] + [g + "/bias" for g in groups]))
        shape = tuple(draw(st.lists(st.sampled_from(HUGE_DIMS), min_size=1, max_size=4)))
        dtype = draw(st.sampled_from(["f4", "f8", "i8", "u1"]))
        try:
            _replace(f, name, shape=shape, dtype=dtype, chunks=(1,) * len(shape))
        except (ValueError, OSError, TypeError):
            _replace(f, name, shape=(1 << 31,), dtype=dtype, chunks=(1,))
            shape = (1 << 31,)
        return f"huge {name} {shape}"
    if op == "empty":
        name = draw(st.sampled_from(datasets))
        _replace(f, name, data=h5py.Empty(draw(st.sampled_from(["f4", "i8", "S10"]))))
        return f"empty {name}"
    if op == "group_for_dataset":
        name = draw(st.sampled_from(datasets))
        old = _small_data(f[name])
        del f[name]
        g = f.create_group(name)
        if draw(st.booleans()) and old is not None:
            g.create_dataset(draw(st.sampled_from(["data", "0", "type", "weight"])), data=old)
        return f"group_for_dataset {name}"
    if op == "dataset_for_group":
        name = draw(st.sampled_from(groups))
        del f[name]
        f.create_dataset(name, data=draw(st.sampled_from([np.int64(1), np.zeros(3), b"conv"])))
        return f"dataset_for_group {name}"
    if op == "link":
        name, other = draw(st.sampled_from(everything)), draw(st.sampled_from(everything))
        how = draw(st.sampled_from(["soft", "dangling", "loop", "ext_missing", "ext_self", "ext_devnull", "hard"]))
        target = {"soft": h5py.SoftLink("/" + other), "dangling": h5py.SoftLink("/nowhere/at/all"),
                  "loop": h5py.SoftLink("/" + name), "ext_missing": h5py.ExternalLink("/nonexistent.h5", "/x"),
                  "ext_self": h5py.ExternalLink(f.filename, "/" + other),
                  "ext_devnull": h5py.ExternalLink("/dev/null", "/x")}.get(how)
        if how == "hard":
            obj = f[other]
            del f[name]
            f[name] = obj
        else:
            del f[name]
            f[name] = target
        return f"link {how} {name} -> {other}"
    if op == "rename_layer":
        layers = list(f["layer"].keys()) if isinstance(f.get("layer"), h5py.Group) else []
        if not layers:
            return "rename_layer (no layers: no-op)"
        src = draw(st.sampled_from(layers))
        dst = draw(st.sampled_from(["x", "-1", "01", " 1", str(len(layers)), str(len(layers) + 3), "1e3",
                                    "\u00e9", "layer", *layers]))
        if dst in f["layer"]:
            f.move(f"layer/{dst}", "layer/__tmp__")
            f.move(f"layer/{src}", f"layer/{dst}")
            if src != dst:
                f.move("layer/__tmp__", f"layer/{src}")
            else:
                del f["layer/__tmp__"]
        else:
            f.move(f"layer/{src}", f"layer/{dst}")
        return f"rename_layer {src} -> {dst}"
    if op == "meta":
        if draw(st.booleans()):
            text = draw(st.sampled_from(META_TEXTS))
        else:
            text = json.dumps(draw(json_values)).encode()
        form = draw(st.sampled_from(["bytes", "vlen", "array", "number"]))
        data = {"bytes": text, "vlen": text.decode("utf-8", "replace"),
                "array": np.array([text, text]), "number": np.float64(len(text))}[form]
        _replace(f, "neurosim/meta", data=data,
                 dtype=h5py.string_dtype() if form == "vlen" else None)
        return f"meta {form} {text[:40]!r}"
    if op == "input_shape":
        data = _numbers(draw, (draw(st.integers(0, 4)),), integer=True) if draw(st.booleans()) else \
            np.array(draw(st.lists(st.integers(-2, 40), max_size=4)), dtype=np.int64)
        _replace(f, "neurosim/input_shape", data=data)
        return f"input_shape {data.tolist()}"
    if op == "extra":
        where = draw(st.sampled_from(groups + [""]))
        key = draw(st.sampled_from(["bias", "weight", "kernelSize", "groups", "stride", "padding", "dilation",
                                    "gradedSpike", "iDecay", "refDelay", "neuron", "extra", "x/y/z"]))
        name = f"{where}/{key}" if where else key
        if name in f:
            return "extra (exists: no-op)"
        f.create_dataset(name, data=_numbers(draw, draw(st.sampled_from([(), (1,), (2,), (4,), (5,)])),
                                             integer=draw(st.booleans())))
        return f"extra {name}"
    if op == "swap_layers":
        layers = list(f["layer"].keys()) if isinstance(f.get("layer"), h5py.Group) else []
        if len(layers) < 2:
            return "swap_layers (no-op)"
        a, b = draw(st.sampled_from(layers)), draw(st.sampled_from(layers))
        if a != b:
            f.move(f"layer/{a}", "layer/__tmp__")
            f.move(f"layer/{b}", f"layer/{a}")
            f.move("layer/__tmp__", f"layer/{b}")
        return f"swap_layers {a} {b}"
    if op == "attrs":
        name = draw(st.sampled_from(everything))
        f[name].attrs["junk"] = np.arange(3)
        return f"attrs {name}"
    raise AssertionError(op)


OPS = ["drop", "dtype", "shape", "reshape", "nonfinite", "value", "huge", "empty", "group_for_dataset",
       "dataset_for_group", "link", "rename_layer", "meta", "input_shape", "extra", "swap_layers", "attrs"]


# ----------------------------------------------------------------------------- tests

def test_structured_mutations(bases, work):
    path = work / "mutated.net"

    @fuzz_settings(400)
    @given(base=st.sampled_from(sorted(bases)), ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=3),
           data=st.data())
    def structured_mutations(base, ops, data):
        path.write_bytes(bases[base])
        done = []
        with h5py.File(path, "r+") as f:
            for op in ops:
                try:
                    done.append(mutate(f, op, data.draw))
                except (KeyError, ValueError, TypeError, OSError, RuntimeError) as exc:
                    done.append(f"{op} not applicable ({exc.__class__.__name__})")
        for d in done:
            event(f"op: {d.split()[0]}")
        event(f"outcome: {check_file(path)}")

    run_guarded(structured_mutations, work)


def test_truncated_files(bases, work):
    path = work / "truncated.net"

    @fuzz_settings(350)
    @given(base=st.sampled_from(sorted(bases)), data=st.data())
    def truncated_files(base, data):
        raw = bases[base]
        cut = data.draw(st.integers(0, len(raw) - 1))
        path.write_bytes(raw[:cut])
        event(f"outcome: {check_file(path)}")

    run_guarded(truncated_files, work)


def test_flipped_bytes(bases, work):
    path = work / "flipped.net"

    @fuzz_settings(400)
    @given(base=st.sampled_from(sorted(bases)), data=st.data(),
           how=st.sampled_from(["flip", "flip", "zero_range", "random_range", "duplicate_range"]))
    def flipped_bytes(base, data, how):
        raw = bytearray(bases[base])
        n = len(raw)
        if how == "flip":
            for _ in range(data.draw(st.integers(1, 8))):
                raw[data.draw(st.integers(0, n - 1))] ^= data.draw(st.integers(1, 255))
        else:
            start = data.draw(st.integers(0, n - 1))
            length = data.draw(st.integers(1, 64))
            end = min(n, start + length)
            if how == "zero_range":
                raw[start:end] = bytes(end - start)
            elif how == "random_range":
                raw[start:end] = data.draw(st.binary(min_size=end - start, max_size=end - start))
            else:
                src = data.draw(st.integers(0, n - (end - start)))
                raw[start:end] = raw[src:src + end - start]
        path.write_bytes(bytes(raw))
        event(f"outcome: {check_file(path)}")

    run_guarded(flipped_bytes, work)


# ----------------------------------------------------------------------------- explicit cases

def _base_file(bases, work, name="conv_rmp") -> Path:
    path = work / f"{name}-case.net"
    path.write_bytes(bases[name])
    return path


def test_every_base_runs(bases, work):
    for name in bases:
        assert check_file(_base_file(bases, work, name)).startswith("loaded")


@pytest.mark.parametrize("n, before, message", [
    ((1 << 14) - 1, False, "declares 268402689 values but stores none"),
    (1 << 14, True, "the file's arrays hold more than 268435456 values together"),
])
def test_declared_but_unstored_giant_is_refused_without_allocating(work, n, before, message):
    """A tiny file declaring a ~2**28-value weight that matches its layers: refused before reading
    (``before``: after a stored (n, 4) weight, the 2**28 values exceed the file's total)."""
    path = work / "giant.net"
    layers = [Input((4,), RMP(1))] + [dense((4,), np.zeros((4, 4)), RMP(1))] * (2 if before else 1)
    hdf5.save(Netlist(layers), path)
    last = len(layers) - 1
    with h5py.File(path, "r+") as f:
        for i in range(len(layers)):
            del f[f"layer/{i}/shape"]
            f[f"layer/{i}/shape"] = np.array([4 if before and i == 0 else n])
        del f[f"layer/{last}/weight"]
        f.create_dataset(f"layer/{last}/weight", shape=(n, n), dtype="f4", chunks=(1, n))
        if before:
            del f["layer/1/weight"]
            f.create_dataset("layer/1/weight", data=np.zeros((n, 4), "f4"), compression="gzip")
    assert path.stat().st_size < 100_000
    _reset_peak_rss()
    rss0 = _peak_rss()
    with pytest.raises(NetlistError, match=f"layer {last}: key 'weight': {message}"):
        hdf5.load(path)
    assert _peak_rss() - rss0 < 64 << 20


@pytest.mark.parametrize("shape, message", [
    ((1 << 40,), "exceed the limit"),
    ((1 << 31, 1 << 31), "exceed the limit"),
    ((5, 1 << 20), "does not match"),
])
def test_huge_declared_shapes_are_refused_before_reading(bases, work, shape, message):
    path = _base_file(bases, work)
    with h5py.File(path, "r+") as f:
        del f["layer/4/weight"]
        f.create_dataset("layer/4/weight", shape=shape, dtype="f4", chunks=(1,) * len(shape))
    with pytest.raises(NetlistError, match=f"layer 4: key 'weight': .*{message}"):
        hdf5.load(path)


def test_external_link_to_a_fifo_is_not_followed(bases, work, tmp_path):
    """Following it would block forever (opening a FIFO waits for a writer)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in ("layer/1", "layer/1/weight", "neurosim"):
        path = _base_file(bases, work)
        with h5py.File(path, "r+") as f:
            if target in f:
                del f[target]
            f[target] = h5py.ExternalLink(str(fifo), "/x")
            if target == "neurosim":
                f.move("neurosim", "neurosim_link")
                f.create_group("neurosim")
                f["neurosim/meta"] = h5py.ExternalLink(str(fifo), "/x")
        code = f"from neurosim.netlist import hdf5\ntry:\n    hdf5.load({str(path)!r})\nexcept Exception as e:\n    print(e)"
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert "an external link" in out.stdout, (target, out.stdout, out.stderr)


def test_external_raw_storage_is_not_read(bases, work, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(5 * 36, dtype=np.float32).tobytes())
    path = _base_file(bases, work)
    with h5py.File(path, "r+") as f:
        del f["layer/4/weight"]
        f.create_dataset("layer/4/weight", shape=(5, 36), dtype="f4", external=[(str(secret), 0, 5 * 36 * 4)])
    with pytest.raises(NetlistError, match="layer 4: key 'weight': data stored in other files"):
        hdf5.load(path)


def test_virtual_dataset_is_not_read(bases, work, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["w"] = np.ones((5, 36), dtype="f4")
    path = _base_file(bases, work)
    layout = h5py.VirtualLayout(shape=(5, 36), dtype="f4")
    layout[...] = h5py.VirtualSource(str(other), "w", shape=(5, 36))
    with h5py.File(path, "r+") as f:
        del f["layer/4/weight"]
        f.create_virtual_dataset("layer/4/weight", layout)
    with pytest.raises(NetlistError, match="layer 4: key 'weight': data stored in other files"):
        hdf5.load(path)


@pytest.mark.parametrize("meta, message", [
    (b'{"timesteps": "abc"}', "'timesteps' must be a whole number"),
    (b'{"ann_accuracy": "x"}', "'ann_accuracy' must be a number"),
    (b'{"dataset": 5}', "'dataset' must be a name"),
    (b'{"a": NaN}', "not JSON"),
    (b"[" * 100_000, "not JSON"),
    (b"[1]", "must be a JSON object"),
    (b'{"x": "' + b"a" * (1 << 20) + b'"}', "exceeds the limit"),
])
def test_bad_metadata_is_refused(bases, work, meta, message):
    path = _base_file(bases, work)
    with h5py.File(path, "r+") as f:
        f["neurosim/meta"] = meta
    with pytest.raises(NetlistError, match=f"key 'neurosim/meta': .*{message}"):
        hdf5.load(path)


def test_values_beyond_the_magnitude_limit_are_refused(bases, work):
    path = _base_file(bases, work)
    with h5py.File(path, "r+") as f:
        del f["layer/0/weight"]
        f["layer/0/weight"] = np.float64(1e300)
    with pytest.raises(NetlistError, match="layer 0: key 'weight': values up to 1e\\+300 exceed the limit"):
        hdf5.load(path)


def test_errors_name_the_neuron_key(bases, work):
    path = _base_file(bases, work)
    with h5py.File(path, "r+") as f:
        del f["layer/2/neuron/vThMant"]
        f["layer/2/neuron/vThMant"] = b"lots"
    with pytest.raises(NetlistError, match="layer 2: key 'neuron/vThMant': expected numbers"):
        hdf5.load(path)


def test_failed_save_leaves_no_file_and_no_temp(work, tmp_path):
    bad = Netlist([Input((3,), RMP(1))], meta={"x": float("nan")})
    with pytest.raises(NeurosimError, match="metadata is not plain JSON"):
        hdf5.save(bad, tmp_path / "n.net")
    folder = tmp_path / "blocked.net"
    folder.mkdir()
    with pytest.raises(NeurosimError, match="cannot write the netlist"):
        hdf5.save(small_conv_net(), folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.net"]
    assert list(folder.iterdir()) == []


def test_corrupt_string_heap_does_not_hang(bases, work):
    """Found by the byte-flip fuzzer: libhdf5 loops forever reading a variable-length string whose
    heap collection holds a free-space object of size 0 (still with h5py 3.16 / HDF5 2.0). save()
    writes fixed-length strings only; another writer's variable-length one is checked first."""
    import struct

    path = _base_file(bases, work)
    with h5py.File(path, "r+") as f:
        assert not [name for name, is_ds in _items(f) if is_ds and f[name].dtype.kind == "O"]
        del f["layer/0/neuron/type"]
        f["layer/0/neuron/type"] = b"RMP"                            # as h5py stores a bytes object
        ds = f["layer/0/neuron/type"]
        assert ds.dtype.kind == "O"                                  # variable-length: a heap object
        offset = ds.id.get_offset()
    raw = bytearray(path.read_bytes())
    _, addr, _ = struct.unpack_from("<IQI", raw, offset)
    assert raw[addr:addr + 4] == b"GCOL"
    p = addr + 16
    while True:                                                       # walk to the free-space object
        idx, _, _, size = struct.unpack_from("<HHIQ", raw, p)
        if idx == 0:
            break
        p += 16 + -(-size // 8) * 8
    struct.pack_into("<Q", raw, p + 8, 0)                             # free space of size 0
    path.write_bytes(bytes(raw))
    code = (f"from neurosim.netlist import hdf5\ntry:\n    hdf5.load({str(path)!r})\n"
            "except Exception as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "NetlistError" in out.stdout and "key 'neuron/type': variable-length string with a corrupt heap" \
        in out.stdout, out.stdout + out.stderr
