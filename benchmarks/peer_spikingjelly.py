#!/usr/bin/env python
"""SpikingJelly 2.0 as the peer of the conversion benchmark, run from its own virtualenv.

    scripts/setup_peer.sh                     # once: .venv-peer (Python 3.11, torch 2.13.0+cpu, spikingjelly 2.0.0)
    .venv-peer/bin/python benchmarks/peer_spikingjelly.py --arch neurosim/architectures/cifar_resnet20.py \\
        --weights runs/bench/cifar_resnet20/weights.pt --data images.npz --steps 8,16,32,64 --out peer.json

``benchmarks/conversion.py`` writes the ``.npz`` and calls this script (``--peer-venv``); it is
runnable by hand as above. It runs in ``.venv-peer`` and imports nothing of neurosim (whose
``.venv`` has Python 3.10, torch 2.3 and another numpy): the architecture is loaded from its
file (``neurosim/architectures/<name>.py`` imports only torch) and built with ``build(width=...)``,
the ``state_dict`` from ``--weights``, the images from ``--data`` (``x_cal``: calibration images,
``x_test``, ``y_test``: the test images and labels of neurosim's rows).

Each recipe of ``--recipes`` converts a fresh copy of the ANN with SpikingJelly 2.0's
``ann2snn.Converter`` (its FX path):

* ``rate-channel-half``      ``RateCodingRecipe(loader, channel_wise=True, half_threshold=True)``:
  per-channel thresholds (the calibration batches' channel maxima, SpikingJelly's default
  ``mode="Max"``, momentum 0.1 over batches), every IF neuron starting at theta/2, soft reset;
* ``rate-channel-half-99.9`` the same with ``mode="99.9%"`` (per-channel 99.9th percentile; the
  recipe of SpikingJelly's ImageNet example ``examples/imagenet_resnet18_ltb.py``);
* ``ltb``                    ``LocalThresholdBalancingRecipe(loader)``: local threshold balancing
  (Bu, Li & Yu, CVPR 2025), theta/2 neurons, per-channel thresholds that grow with every
  calibration batch (by twice the mean activation above them) toward the channel maxima, so
  the result depends on the number of batches: the calibration images are fed ``--ltb-passes``
  times, by default as many as make the 50,000 images (at batch 128) of SpikingJelly's ImageNet
  LTB example (25 passes over 2,000 images; on the ResNet-20, 8 batches leave it at chance);
* ``qcfs``                   a QCFS-trained checkpoint. SpikingJelly 2.0 has no QCFS recipe for CNNs
  (its QCFS code, ``ann2snn.SignedQCFSSequenceEncoder``, re-encodes time-summed activations of
  its Qwen2 recipe offline). A QCFS activation with trained threshold lambda converts to an IF
  neuron with threshold lambda, soft reset and initial potential lambda/2 (Bu et al., ICLR 2022),
  which is exactly the neuron of SpikingJelly's channel-wise theta/2 rate coding
  (``ChannelVoltageScaler(1/theta) -> HalfThresholdIFNode -> ChannelVoltageScaler(theta)``):
  :class:`TrainedThresholdRecipe` is that recipe with every channel's theta set to its
  layer's trained lambda (the ``<relu>.threshold`` entries of the ``state_dict``, read by the
  ReLU module's name) instead of calibrated.

The converted net runs in SpikingJelly's single-step mode, as its examples evaluate: one call
per time step on a batch of images (the image is the input current at every step; with
``--input-coding if-spikes`` the image's spikes from IF input neurons, as neurosim's ``Input`` layer
makes them, so the two converters can be compared with the same input coding), the output
summed over steps; T is the papers' T (every layer integrates T steps). One run of the largest
T per batch, the accuracy read after every T of ``--steps``. Writes ``--out`` (JSON): versions,
threads, load average, the ANN's accuracy on the test images (ReLU; a QCFS-trained model's
ReLU equivalent), and per recipe the accuracy at each T, conversion and simulation seconds and
samples/s (test images / simulation seconds of the largest T).
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, NoReturn

os.environ.setdefault("TQDM_DISABLE", "1")      # SpikingJelly's calibration progress bars

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch import fx  # noqa: E402

from spikingjelly.activation_based import ann2snn, functional  # noqa: E402
from spikingjelly.activation_based.ann2snn.recipes.rate_coding import ChannelVoltageHook  # noqa: E402
from spikingjelly.logger import logger  # noqa: E402

PROG = "peer_spikingjelly"
CALIB_BATCH = 128          # SpikingJelly's ImageNet conversion example's batch size ...
CALIB_SEEN = 50_000        # ... and its number of calibration images (local threshold balancing)
TEST_BATCH = 250
THRESHOLD_SUFFIX = ".threshold"


class PeerError(Exception):
    """An error the user can fix (bad arguments, missing files, a model the peer cannot load)."""


def fail(msg: str) -> NoReturn:
    """One line on stderr, exit code 2."""
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


# ----------------------------------------------------------------------------- model and data

def load_architecture(path: Path) -> Callable[..., nn.Module]:
    """The ``build`` function of an architecture file, loaded by path (no package import)."""
    if not path.is_file():
        raise PeerError(f"--arch {path}: no such file")
    spec = importlib.util.spec_from_file_location(f"peer_arch_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise PeerError(f"--arch {path} imports what the peer venv lacks ({exc}); an architecture file for the "
                        "peer must import only torch") from exc
    if not callable(getattr(module, "build", None)):
        raise PeerError(f"--arch {path} has no build() function")
    return module.build


def load_model(build: Callable[..., nn.Module], width: float, weights: Path) -> tuple[nn.Module, dict[str, float]]:
    """The ANN (plain ReLU architecture) with the ``state_dict`` of ``weights``, and the trained
    QCFS thresholds found in it (``{relu module name: lambda}``, empty for a ReLU-trained model)."""
    model = build(width=width)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    own = set(model.state_dict())
    thresholds = {k[:-len(THRESHOLD_SUFFIX)]: float(v) for k, v in state.items()
                  if k.endswith(THRESHOLD_SUFFIX) and k not in own}
    modules = dict(model.named_modules())
    strays = [name for name in thresholds if not isinstance(modules.get(name), nn.ReLU)]
    if strays:
        raise PeerError(f"{weights}: QCFS thresholds of modules that are not nn.ReLU modules of the architecture: "
                        f"{', '.join(strays)}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
    return model.eval(), thresholds


def load_images(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x_cal``, ``x_test``, ``y_test`` of the project side's ``.npz``."""
    with np.load(path) as data:
        missing = {"x_cal", "x_test", "y_test"} - set(data.files)
        if missing:
            raise PeerError(f"--data {path}: missing arrays {', '.join(sorted(missing))}")
        if not (len(data["x_cal"]) and len(data["x_test"]) == len(data["y_test"]) > 0):
            raise PeerError(f"--data {path}: needs calibration images and as many test labels as test images")
        return (torch.as_tensor(data["x_cal"], dtype=torch.float32),
                torch.as_tensor(data["x_test"], dtype=torch.float32),
                torch.as_tensor(data["y_test"], dtype=torch.long))


class Batches:
    """The calibration images in batches of ``size``, ``passes`` times over (re-iterable)."""

    def __init__(self, x: torch.Tensor, size: int, passes: int = 1) -> None:
        self.x, self.size, self.passes = x, size, passes

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self.x[s:s + self.size] for _ in range(self.passes) for s in range(0, len(self.x), self.size))

    def __len__(self) -> int:
        return self.passes * -(-len(self.x) // self.size)


# ----------------------------------------------------------------------------- recipes

class TrainedThresholdRecipe(ann2snn.RateCodingRecipe):
    """SpikingJelly's channel-wise theta/2 rate coding with each ReLU's threshold set to its
    trained QCFS lambda (all channels alike) instead of calibrated: IF neurons with threshold
    lambda, soft reset, initial potential lambda/2, as QCFS converts."""

    def __init__(self, dataloader: Iterable, thresholds: dict[str, float]) -> None:
        super().__init__(dataloader, channel_wise=True, half_threshold=True)
        self.thresholds = thresholds

    def calibrate(self, converter: ann2snn.Converter, fx_model: fx.GraphModule) -> fx.GraphModule:
        """One calibration batch (it gives every hook its channel count), then theta := lambda."""
        fx_model(next(iter(self.dataloader)).to(converter.device))
        modules = dict(fx_model.named_modules())
        hooks = {node.args[0].target: modules[node.target] for node in fx_model.graph.nodes
                 if node.op == "call_module" and isinstance(modules.get(node.target), ChannelVoltageHook)}
        if set(hooks) != set(self.thresholds):
            raise PeerError(f"ReLUs of the traced model {sorted(hooks)} and QCFS thresholds of the checkpoint "
                            f"{sorted(self.thresholds)} differ")
        for relu, hook in hooks.items():
            hook.scale = torch.full_like(hook.scale, self.thresholds[relu])
        return fx_model


#: recipe name -> (label, the SpikingJelly 2.0 call, whether it needs a QCFS-trained checkpoint)
RECIPES = {
    "rate-channel-half": ("rate channel θ/2 (Max)",
                          "RateCodingRecipe(loader, channel_wise=True, half_threshold=True)", False),
    "rate-channel-half-99.9": ("rate channel θ/2 (99.9%)",
                               "RateCodingRecipe(loader, mode='99.9%', channel_wise=True, half_threshold=True)",
                               False),
    "ltb": ("local threshold balancing", "LocalThresholdBalancingRecipe(loader)", False),
    "qcfs": ("QCFS (trained λ, θ/2)",
             "RateCodingRecipe(loader, channel_wise=True, half_threshold=True), thresholds := trained QCFS λ",
             True),
}
DEFAULT_RECIPES = ("rate-channel-half", "rate-channel-half-99.9", "ltb")


def make_recipe(name: str, loader: Batches, thresholds: dict[str, float]) -> ann2snn.ConversionRecipe:
    """The SpikingJelly 2.0 recipe object of ``name`` (see :data:`RECIPES`)."""
    if name == "rate-channel-half":
        return ann2snn.RateCodingRecipe(loader, channel_wise=True, half_threshold=True)
    if name == "rate-channel-half-99.9":
        return ann2snn.RateCodingRecipe(loader, mode="99.9%", channel_wise=True, half_threshold=True)
    if name == "ltb":
        return ann2snn.LocalThresholdBalancingRecipe(loader)
    return TrainedThresholdRecipe(loader, thresholds)


# ----------------------------------------------------------------------------- running

@torch.no_grad()
def ann_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of the ANN on the test images."""
    hits = sum(int((model(x[s:s + TEST_BATCH]).argmax(1) == y[s:s + TEST_BATCH]).sum())
               for s in range(0, len(x), TEST_BATCH))
    return hits / len(x)


class SpikeInput:
    """The image coded as neurosim's ``Input`` layer codes it: integrate-and-fire neurons driven
    by the pixel as a constant current, threshold ``theta`` (the calibration images' maximum,
    where neurosim's rules put the input layer's threshold), initial potential ``theta / 2``,
    soft reset; each spike carries ``theta``. With ``--input-coding if-spikes`` the converted
    net gets these spikes instead of the image (SpikingJelly's own input: the image as the
    first layer's current at every step)."""

    def __init__(self, x: torch.Tensor, theta: float) -> None:
        self.x, self.theta = x, theta
        self.v = torch.full_like(x, theta / 2)

    def step(self) -> torch.Tensor:
        self.v = self.v + self.x
        spikes = (self.v >= self.theta).to(self.x.dtype)
        self.v = self.v - spikes * self.theta
        return spikes * self.theta


@torch.no_grad()
def snn_curve(snn: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: list[int], batch: int,
              spike_theta: float | None = None) -> dict[int, float]:
    """Accuracy after each T of ``steps``: one run of ``max(steps)`` single steps per batch,
    the output summed from step 1; the image at every step, or with ``spike_theta`` its
    :class:`SpikeInput` spikes."""
    hits = {t: 0 for t in steps}
    for s in range(0, len(x), batch):
        xb, yb = x[s:s + batch], y[s:s + batch]
        functional.reset_net(snn)
        coded = None if spike_theta is None else SpikeInput(xb, spike_theta)
        out: torch.Tensor | int = 0
        for t in range(1, max(steps) + 1):
            out = out + snn(xb if coded is None else coded.step())
            if t in hits:
                hits[t] += int((out.argmax(1) == yb).sum())
    return {t: hits[t] / len(x) for t in steps}


def run_recipe(name: str, model: nn.Module, thresholds: dict[str, float], x_cal: torch.Tensor, ltb_passes: int,
               x: torch.Tensor, y: torch.Tensor, steps: list[int], batch: int, spike_input: bool = False) -> dict:
    """Convert a copy of ``model`` with recipe ``name`` calibrated on ``x_cal`` (``ltb_passes`` times
    over for local threshold balancing, once for the others), run it (on the image, or with
    ``spike_input`` on its :class:`SpikeInput` spikes), time both."""
    label, api, _ = RECIPES[name]
    calib = Batches(x_cal, CALIB_BATCH, ltb_passes if name == "ltb" else 1)
    t0 = time.perf_counter()
    snn = ann2snn.Converter(make_recipe(name, calib, thresholds), device="cpu").convert(
        copy.deepcopy(model)).eval()
    t_conv = time.perf_counter() - t0
    curve = snn_curve(snn, x, y, steps, batch, float(x_cal.max()) if spike_input else None)
    t_sim = time.perf_counter() - t0 - t_conv
    if spike_input:
        label += ", IF-spike input"
    return {"recipe": name, "label": label, "input_coding": "if-spikes" if spike_input else "analog", "api": f"spikingjelly.activation_based.ann2snn.{api}",
            "curve": {str(t): {"accuracy": a} for t, a in curve.items()},
            "seconds": {"convert": t_conv, "simulate": t_sim}, "samples_per_s": len(x) / t_sim}


def _versions() -> dict:
    from importlib.metadata import version
    return {"spikingjelly": version("spikingjelly"), "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", type=Path, required=True, help="architecture file with build(width=...)")
    p.add_argument("--width", type=float, default=1.0, help="build(width=...) (default 1.0)")
    p.add_argument("--weights", type=Path, required=True, help="the state_dict (weights.pt)")
    p.add_argument("--data", type=Path, required=True, help=".npz with x_cal, x_test, y_test")
    p.add_argument("--steps", required=True, help="comma-separated T (one run of the largest)")
    p.add_argument("--recipes", default=None,
                   help=f"comma-separated, of {', '.join(RECIPES)} (default: {','.join(DEFAULT_RECIPES)}; "
                        "qcfs for a QCFS-trained checkpoint)")
    p.add_argument("--ltb-passes", type=int, default=None,
                   help="passes over the calibration images for local threshold balancing, which grows its "
                        f"thresholds with every batch (default: as many as make {CALIB_SEEN:,} images, the calibration "
                        "set of SpikingJelly's ImageNet LTB example; the other recipes: one pass)")
    p.add_argument("--input-coding", choices=("analog", "if-spikes"), default="analog",
                   help="analog: the image is the first layer's current at every step (SpikingJelly's way, "
                        "the default); if-spikes: the image coded by IF neurons first, as neurosim's Input layer "
                        "codes it (what the input coding costs)")
    p.add_argument("--batch", type=int, default=TEST_BATCH, help=f"test images per run (default {TEST_BATCH})")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", type=Path, required=True, help="result JSON")
    args = p.parse_args(argv)
    try:
        steps = sorted({int(s) for s in args.steps.split(",")})
    except ValueError:
        fail(f"--steps {args.steps!r}: not a comma-separated list of integers")
    if steps[0] < 1:
        fail("--steps: every T must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    logger.remove()                     # SpikingJelly's per-conversion INFO lines
    try:
        build = load_architecture(args.arch)
        model, thresholds = load_model(build, args.width, args.weights)
        names = args.recipes.split(",") if args.recipes else (["qcfs"] if thresholds else list(DEFAULT_RECIPES))
        unknown = [n for n in names if n not in RECIPES]
        if unknown:
            raise PeerError(f"--recipes: unknown {', '.join(unknown)} (known: {', '.join(RECIPES)})")
        if any(RECIPES[n][2] for n in names) and not thresholds:
            raise PeerError(f"{args.weights}: recipe qcfs needs a QCFS-trained checkpoint (<relu>.threshold entries)")
        x_cal, x, y = load_images(args.data)
    except (PeerError, OSError) as exc:
        fail(str(exc))
    ltb_passes = args.ltb_passes or max(1, round(CALIB_SEEN / len(x_cal)))
    out = {"versions": _versions(), "threads": torch.get_num_threads(), "load_average_start": os.getloadavg(),
           "steps": steps, "calib_images": len(x_cal), "calib_batch": CALIB_BATCH, "ltb_passes": ltb_passes,
           "test_images": len(x),
           "batch": args.batch, "qcfs_thresholds": thresholds, "ann_accuracy": ann_accuracy(model, x, y), "rows": []}
    for name in names:
        try:
            row = run_recipe(name, model, thresholds, x_cal, ltb_passes, x, y, steps, args.batch,
                             args.input_coding == "if-spikes")
        except PeerError as exc:
            fail(str(exc))
        out["rows"].append(row)
        print(f"  spikingjelly {out['versions']['spikingjelly']} {row['label']:28s} "
              + " ".join(f"{100 * row['curve'][str(t)]['accuracy']:6.2f}" for t in steps)
              + f"   ({row['seconds']['simulate']:.0f} s, {row['samples_per_s']:.1f} samples/s)", flush=True)
    out["load_average_end"] = os.getloadavg()
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
