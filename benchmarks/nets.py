"""The nets and inputs of ``benchmarks/bench_simulators.py``.

* reference nets written by lava-dl (``../shared/netx-reference`` next to the repository): ``oxford`` (200-256-200
  dense, spike input), ``mnist_bootstrap`` (784-512-512-10, input layer fed by current),
  ``pilotnet_lif`` (input layer + 5 conv + 4 dense);
* ``mainjob``: the project's main-job net (``deploy/export.py``; RMP, conv + pool + dense);
* ``cifar_vgg``: a VGG-style CIFAR-10-sized net built here from the schema dataclasses with random
  integer weights and thresholds calibrated for moderate spike rates;
* ``dense_w<W>``: oxford-like 200-W-200 CUBA dense nets for the width scaling table.

Every input is generated deterministically from (net, n, T, seed), so a child process can
rebuild exactly the batch the parent asked for without passing arrays around.
"""
from __future__ import annotations

import dataclasses
import gzip
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from neurosim.data.dataset import DEFAULT_DIRS
from neurosim.netlist import build
from neurosim.netlist.schema import Flatten, Input, Netlist, Population, conv_output_hw
from neurosim.netlist.neurons import CUBA, RMP

REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "netx-reference"
MNIST_DIR = DEFAULT_DIRS["mnist"]           # the data loaders' place (../shared/datasets/mnist)
REFERENCE_NETS = ("oxford", "mnist_bootstrap", "pilotnet_lif")


def load_net(path) -> Netlist:
    """A netlist file through neurosim's own reader (validated)."""
    from neurosim.netlist.hdf5 import load
    return load(path)


# ----------------------------------------------------------------------------- inputs

@dataclass
class Inputs:
    """One batch for every executor.

    ``sim``: what ``Simulator.run(sim, T, raw_current=raw_current)`` takes: the input current in
    mantissas (N, *shape) for nets with an ``input`` layer, spikes (N, T, *in_shape) otherwise.
    ``x``: the samples before the input layer's ``weight * x + bias`` (what
    ``neurosim.lava.runner.run_lava`` takes), or None when only a current is defined.
    """
    sim: np.ndarray
    raw_current: bool
    x: Optional[np.ndarray] = None


def _oxford_raster(reference_dir: Path) -> np.ndarray:
    """oxford/input.npy events (neuron, 0, time) as a (200, L) 0/1 raster at one step per time unit."""
    ev = np.load(reference_dir / "oxford" / "input.npy")
    t = np.floor(ev[:, 2]).astype(int)
    raster = np.zeros((200, t.max() + 1), dtype=np.float64)
    raster[ev[:, 0].astype(int), t] = 1
    return raster


def _mnist_test_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """n MNIST test images (n, 784) in [0, 1] (cycled), or uniform noise if the files are absent."""
    path = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
        images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784)
        return images[np.arange(n) % len(images)].astype(np.float64) / 255.0
    except OSError:
        return rng.random((n, 784))


def _digits_test_images(n: int) -> np.ndarray:
    from neurosim.data.digits import load_digits_split
    x = load_digits_split()[1].x.astype(np.float64)
    return x[np.arange(n) % len(x)]


def make_inputs(name: str, net: Netlist, n: int, steps: int, seed: int = 0,
                reference_dir: Path = REFERENCE_DIR) -> Inputs:
    """The batch of ``n`` samples for net ``name`` at ``steps`` steps (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    if name == "oxford":
        raster = _oxford_raster(reference_dir)
        length = raster.shape[1]
        if steps >= length:
            raster = np.tile(raster, (1, math.ceil((steps + 1) / length)))
            length = raster.shape[1]
        starts = (np.arange(n) * 97 + seed) % (length - steps)
        spikes = np.stack([raster[:, s:s + steps].T for s in starts])      # (n, T, 200)
        return Inputs(sim=spikes, raw_current=False)
    if name.startswith("dense_w"):
        return Inputs(sim=(rng.random((n, steps, *net.input_shape)) < 0.1).astype(np.float64),
                      raw_current=False)
    layer = net.layers[0]
    if not isinstance(layer, Input):
        raise ValueError(f"{name}: no input recipe for a net without an input layer")
    if name == "mnist_bootstrap":
        # lava-dl bootstrap training: image normalised to (x - 0.5) / 0.5, fed as constant current
        x = (_mnist_test_images(n, rng) - 0.5) / 0.5
        x = x.reshape(n, *layer.shape)
    elif name == "pilotnet_lif":
        # the camera frame (W, H, C) -> (C, H, W), used directly as the input neurons' current
        # (bias_mant), jittered per sample
        img = np.load(reference_dir / "pilotnet_lif" / "image.npy").transpose(2, 1, 0).astype(np.float64)
        cur = np.clip(img[None] + rng.integers(-8, 9, size=(n, *img.shape)), 0, 255)
        return Inputs(sim=cur, raw_current=True)
    elif name == "mainjob":
        x = _digits_test_images(n).reshape(n, *layer.shape)
    else:                                   # cifar_vgg and other synthetic image nets
        x = _smooth_images(rng, n, tuple(layer.shape))
    return Inputs(sim=layer.current(x, fixed=True), raw_current=True, x=x)


def _smooth_images(rng: np.random.Generator, n: int, shape: tuple) -> np.ndarray:
    """Random images in [0, 1] with some spatial correlation (2x2 upsampled noise + noise)."""
    c, h, w = shape
    coarse = rng.random((n, c, (h + 1) // 2, (w + 1) // 2))
    img = coarse.repeat(2, axis=2).repeat(2, axis=3)[:, :, :h, :w]
    return np.clip(0.7 * img + 0.3 * rng.random((n, c, h, w)), 0.0, 1.0)


# ----------------------------------------------------------------------------- synthetic nets

def _even_int_weights(rng: np.random.Generator, shape: tuple, sigma: float, mean: float = 0.0) -> np.ndarray:
    """Even integers in [-256, 254] (lossless for Lava's 8-bit dense weights and SLAYER's hook)."""
    w = 2 * np.round(rng.normal(mean, sigma, size=shape) / 2)
    return np.clip(w, -256, 254)


def _solve_threshold(drive: np.ndarray, target: float, vth_max: int = (1 << 17) - 1) -> int:
    """Integer threshold giving mean rate ``target`` for IF neurons with mean drive ``drive`` per step.

    The rate of a soft-reset IF neuron with mean input ``m`` per step is about clip(m / vth, 0, 1).
    """
    drive = np.asarray(drive, dtype=np.float64).reshape(-1)
    if not np.any(drive > 0):
        return 1
    lo, hi = 1.0, float(vth_max)
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        rate = np.clip(drive / mid, 0, 1).mean()
        lo, hi = (mid, hi) if rate > target else (lo, mid)
    return int(max(1, min(vth_max, round(math.sqrt(lo * hi)))))


def calibrate_thresholds(net: Netlist, current: np.ndarray, steps: int, target: float) -> Netlist:
    """Set each layer's vThMant, layer by layer, so its mean spike rate is about ``target``.

    ``current``: the input current (N, *shape) for nets with an input layer, else spikes
    (N, T, *input_shape). Each layer is simulated alone (float mode) on the spikes of the
    already calibrated layer before it; its mean synaptic input per step sets its threshold.
    Chains only: every population has one projection from the layer just before.
    """
    import torch

    from neurosim.sim.simulator import Simulator
    from neurosim.sim.synapse import Synapse

    n = len(current)
    layers = list(net.layers)
    for i, layer in enumerate(layers):
        if isinstance(layer, Population) and (len(layer.projections) != 1 or layer.schedule is not None
                                              or net.source_of(i, layer.projections[0].source) != i - 1):
            raise ValueError(f"layer {i}: calibrate_thresholds takes chains only (one projection from "
                             "the layer before, no schedule)")
        if isinstance(layer, Flatten) and net.source_of(i, layer.source) != i - 1:
            raise ValueError(f"layer {i}: calibrate_thresholds takes chains only")
    s_prev = None if net.has_input_layer else np.asarray(current, dtype=np.float64)
    for i, layer in enumerate(layers):
        if isinstance(layer, Flatten):
            s_prev = s_prev.reshape(n, steps, -1)
            continue
        if isinstance(layer, Input):
            drive = np.asarray(current, dtype=np.float64).reshape(n, -1).mean(0)
        else:
            a = Synapse(layer.synapse, net.in_shape(i), fixed=False)(
                torch.as_tensor(s_prev.reshape(-1, *net.in_shape(i))))
            drive = a.reshape(n, steps, -1).numpy().mean(axis=(0, 1))
        vth = _solve_threshold(drive, target)
        layers[i] = _with_neuron(layer, dataclasses.replace(layer.neuron, vThMant=vth))
        if i == len(layers) - 1:
            break
        if isinstance(layer, Input):
            alone = Netlist(layers=[layers[i]])
            res = Simulator(alone, "float").run(current, steps, record_spikes=True, raw_current=True)
        else:
            alone = Netlist(layers=[layers[i]], input_shape=net.in_shape(i))
            res = Simulator(alone, "float").run(s_prev.reshape(n, steps, *net.in_shape(i)), steps,
                                                record_spikes=True)
        s_prev = res.spikes[0].astype(np.float64).reshape(n, steps, *layer.shape)
    return Netlist(layers=layers, input_shape=net.input_shape, meta=dict(net.meta))


def _with_neuron(layer, neuron):
    return dataclasses.replace(layer, neuron=neuron)


def build_cifar_vgg(seed: int = 0, width: float = 1.0, hw: int = 32, neuron: str = "RMP",
                    calib_samples: int = 8, calib_steps: int = 16, target_rate: float = 0.15,
                    channels: tuple = (64, 128, 256)) -> Netlist:
    """VGG-style CIFAR net: input (3, hw, hw) -> conv c1 -> conv c1 -> pool -> conv c2 -> pool ->
    flatten -> dense d -> dense 10, with (c1, c2, d) = ``channels`` * ``width``.

    Weights are random even integers; thresholds are calibrated (float simulation of
    ``calib_samples`` random images) for a mean spike rate of ``target_rate`` per layer.
    """
    rng = np.random.default_rng(seed)
    c1, c2, d1 = (max(1, round(c * width)) for c in channels)

    def make_neuron():
        return RMP(vThMant=1) if neuron == "RMP" else CUBA(vThMant=1, iDecay=4096, vDecay=0)

    layers = [Input(shape=(3, hw, hw), neuron=make_neuron(), weight=256.0, bias=0.0)]
    shape = (3, hw, hw)

    def conv(c_out):
        nonlocal shape
        fan_in = shape[0] * 9
        w = _even_int_weights(rng, (c_out, shape[0], 3, 3), sigma=max(4.0, 512 / math.sqrt(fan_in)),
                              mean=2.0)
        shape = (c_out, *conv_output_hw(shape[1:], (3, 3), (1, 1), (1, 1)))
        layers.append(build.conv(shape, w, make_neuron(), padding=(1, 1)))

    def pool():
        nonlocal shape
        shape = (shape[0], *conv_output_hw(shape[1:], (2, 2), (2, 2), (0, 0)))
        layers.append(build.pool(shape, np.full((2, 2), 64.0), make_neuron()))

    def dense(n_out):
        nonlocal shape
        n_in = int(np.prod(shape))
        w = _even_int_weights(rng, (n_out, n_in), sigma=max(4.0, 512 / math.sqrt(n_in)), mean=1.0)
        shape = (n_out,)
        layers.append(build.dense(shape, w, make_neuron()))

    conv(c1), conv(c1), pool(), conv(c2), pool()
    layers.append(Flatten(shape=(int(np.prod(shape)),)))
    shape = (int(np.prod(shape)),)
    dense(d1), dense(10)
    net = Netlist(layers=layers, meta={"benchmark": "cifar_vgg", "seed": seed, "width": width,
                                       "target_rate": target_rate})
    x = _smooth_images(np.random.default_rng(seed + 1), calib_samples, (3, hw, hw))
    return calibrate_thresholds(net, layers[0].current(x, fixed=True), calib_steps, target_rate)


def build_dense(width: int, seed: int = 0, n_in: int = 200, n_out: int = 200,
                calib_samples: int = 8, calib_steps: int = 16, target_rate: float = 0.1) -> Netlist:
    """Oxford-like dense CUBA net n_in -> width -> n_out (spike input, oxford's decays)."""
    rng = np.random.default_rng(seed)
    w1 = _even_int_weights(rng, (width, n_in), sigma=64, mean=4.0)
    w2 = _even_int_weights(rng, (n_out, width), sigma=max(4.0, 64 * math.sqrt(256 / width)), mean=2.0)
    layers = [build.dense((width,), w1, CUBA(vThMant=1, iDecay=4096, vDecay=415)),
              build.dense((n_out,), w2, CUBA(vThMant=1, iDecay=4096, vDecay=409))]
    net = Netlist(layers=layers, input_shape=(n_in,), meta={"benchmark": f"dense_w{width}"})
    spikes = (np.random.default_rng(seed + 1).random((calib_samples, calib_steps, n_in)) < 0.1).astype(float)
    return calibrate_thresholds(net, spikes, calib_steps, target_rate)


def describe(net: Netlist) -> str:
    """'784-512-512-10'-style summary of a netlist."""
    parts = []
    for layer in net.layers:
        if isinstance(layer, Flatten):
            continue
        kind = {"input": "in", "dense": "fc", "conv": "conv", "pool": "pool",
                "identity": "id"}.get(layer.type_name, layer.type_name)
        if isinstance(layer, Population) and len(layer.projections) > 1:
            kind += f"[{len(layer.projections)}proj]"
        parts.append(f"{kind}{'x'.join(str(s) for s in layer.shape)}")
    return "-".join(parts)


def neuron_count(net: Netlist) -> int:
    return sum(int(np.prod(l.shape)) for l in net.layers if not isinstance(l, Flatten))
