"""Named input encodings: how the images of a data set become the samples a netlist takes.

A data set's images are (N, C, H, W) in [0, 1] (:class:`neurosim.data.dataset.Split`). A net
with an ``input`` layer takes one value ``x`` per input neuron, presented as the constant
current ``weight * x + bias`` for every step (``docs/netlist.md``); an encoding maps the
images to that ``x``, flattened in (C, H, W) order when the input layer is a vector
(SLAYER's ``x.reshape(N, -1, T)`` order). ``docs/netx-run.md`` describes each protocol.

- ``current``: ``x = image`` (neurosim's own converted nets).
- ``bootstrap``: lava-dl's *bootstrap* MNIST tutorial (``tutorials/lava/lib/dl/bootstrap/mnist``):
  torchvision's ``Normalize((0.5), (0.5))`` and then the quantisation SLAYER's input block
  applies to its input (``neuron.quantize_8bit``, step ``2 / 64``)::

      x = clip(round(((image - 0.5) / 0.5) / (2/64)) * (2/64), -256/64, 254/64)

  presented for ``simulation/tSample`` steps (16); the class is the argmax of the readout
  layer's summed input over those steps (its voltage, a non-leaky integrator in netx).

A net *without* an input layer takes spikes. ``train-bntt`` records how it made them
(``meta['spike_encoding']``, :mod:`neurosim.bntt.encoding`); for a net that records nothing,
``rate`` is the generic choice:

- ``rate``: at every step each input neuron spikes with probability equal to its pixel
  (Bernoulli rate coding, seeded), the image flattened in (C, H, W) order when the net's input
  is a vector.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.netlist.schema import Netlist

#: SLAYER's 8-bit grid for a block's weights and its input block's input: values are multiples
#: of ``2 / w_scale`` in ``[-256 / w_scale, 254 / w_scale]`` with ``w_scale = 64``.
SLAYER_W_SCALE = 64
SLAYER_STEP = 2 / SLAYER_W_SCALE


def slayer_quantize_8bit(x: np.ndarray) -> np.ndarray:
    """SLAYER's ``neuron.quantize_8bit`` (round half to even, as ``torch.round``), float32."""
    step = np.float32(SLAYER_STEP)
    q = np.round(np.asarray(x, dtype=np.float32) / step) * step
    return np.clip(q, np.float32(-256 / SLAYER_W_SCALE), np.float32(254 / SLAYER_W_SCALE))


def _current(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32)


def _bootstrap(images: np.ndarray) -> np.ndarray:
    half = np.float32(0.5)
    return slayer_quantize_8bit((np.asarray(images, dtype=np.float32) - half) / half)


@dataclass(frozen=True)
class Encoding:
    """A named map from images in [0, 1] to input-layer samples (same shape, float32)."""
    name: str
    summary: str
    transform: Callable[[np.ndarray], np.ndarray]


ENCODINGS: dict[str, Encoding] = {e.name: e for e in (
    Encoding("current", "the image in [0, 1] as the input layer's x (neurosim's converted nets)", _current),
    Encoding("bootstrap", "lava-dl bootstrap tutorial: (image - 0.5) / 0.5 on SLAYER's 8-bit input grid",
             _bootstrap),
)}


#: Encodings that make spikes for a net without an input layer.
SPIKE_ENCODINGS = ("rate",)


def rate_spikes(images: np.ndarray, net: Netlist, steps: int, seed: int = 0) -> np.ndarray:
    """Bernoulli rate-coded spikes (N, steps, *net.input_shape) uint8 of images in [0, 1]."""
    if net.has_input_layer:
        raise NeurosimError("rate coding makes spikes for a net without an 'input' layer; this one has one "
                            f"(use --encoding {' or '.join(ENCODINGS)})")
    shape = tuple(net.input_shape)
    per_sample = tuple(images.shape[1:])
    if int(np.prod(per_sample)) != int(np.prod(shape)):
        raise NeurosimError(f"the data set's images have shape {per_sample} per sample, the netlist takes spikes "
                            f"of shape {shape}")
    p = np.clip(np.asarray(images, dtype=np.float32).reshape(len(images), 1, *shape), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    return (rng.random((len(images), steps, *shape), dtype=np.float32) < p).astype(np.uint8)


def infer_encoding(net: Netlist) -> str:
    """The encoding a netlist was trained with: its metadata's ``encoding`` if recorded; else
    ``bootstrap`` for a lava-dl tutorial export (it records ``simulation/tSample``, read as
    ``meta['netx_simulation']``) whose first layer is an ``input`` layer with neurons (the
    bootstrap tutorial's network; lava-dl files say nothing more about their training);
    else ``current``."""
    name = net.meta.get("encoding")
    if name is not None:
        if name not in ENCODINGS:
            raise NeurosimError(f"the netlist's metadata names encoding '{name}', known: {', '.join(ENCODINGS)}")
        return name
    if "netx_simulation" in net.meta and net.has_input_layer:
        return "bootstrap"
    return "current"


def encode(name: str, images: np.ndarray, net: Netlist) -> np.ndarray:
    """Images (N, C, H, W) to samples (N, *input layer shape) of ``net`` with encoding ``name``;
    a vector input layer takes the image flattened in (C, H, W) order."""
    if name not in ENCODINGS:
        raise NeurosimError(f"unknown encoding '{name}' (known: {', '.join(ENCODINGS)})")
    if not net.has_input_layer:
        raise NeurosimError(f"encoding '{name}' drives an 'input' layer; this netlist takes spikes "
                            f"{tuple(net.input_shape)} per step: pass them with --input FILE.npy")
    shape = tuple(net.sample_shape)
    per_sample = tuple(images.shape[1:])
    if per_sample != shape:
        if int(np.prod(per_sample)) != int(np.prod(shape)):
            raise NeurosimError(f"the data set's images have shape {per_sample} per sample, the netlist expects {shape}")
        images = images.reshape(len(images), *shape)
    return ENCODINGS[name].transform(images)
