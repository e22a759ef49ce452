"""``neurosim run``: what drives a netlist (a data set's test split through an encoding, the
spikes ``train-bntt`` recorded, or the user's own array) and its runs: on the simulator (and
Lava on some samples or the whole split) into a report, on the simulator for an array, on a
Loihi 2."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from neurosim.bntt.encoding import META_KEY, netlist_input_for
from neurosim.commands.outputs import default_out
from neurosim.data.dataset import Split, load_dataset
from neurosim.data.encodings import ENCODINGS, encode, infer_encoding, rate_spikes
from neurosim.data.npy_input import load_npy, samples_from_array
from neurosim.dynamics import MODES
from neurosim.errors import NeurosimError
from neurosim import evaluate as measure
from neurosim.loihi2.backend import run_loihi2
from neurosim.netlist.schema import Netlist
from neurosim.sim.simulator import SimResult, Simulator


def dataset_input(net: Netlist, name: Path, dataset: Optional[str] = None, data_dir: Optional[str] = None,
                  encoding: Optional[str] = None, steps: Optional[int] = None,
                  limit: Optional[int] = None) -> tuple[Split, int, str]:
    """``(split, steps, encoding line)``: the data set's test images as the input of ``net``
    (read from the file ``name``, which messages name).

    ``dataset`` and ``steps`` default to the netlist's metadata (steps: else 64). A net with an
    input layer takes the images through a named encoding (:mod:`neurosim.data.encodings`); a
    spike-input net through the recipe ``train-bntt`` recorded (:mod:`neurosim.bntt.encoding`),
    or ``encoding="rate"``."""
    dataset = dataset or net.meta.get("dataset")
    if not dataset:
        raise NeurosimError(f"{name}: no data set recorded in the netlist; pass --dataset or --input FILE.npy")
    if net.has_input_layer:
        encoding = encoding or infer_encoding(net)
        if encoding not in ENCODINGS:
            raise NeurosimError(f"--encoding {encoding} makes spikes for a net without an 'input' layer; "
                                f"{name} has one (use {' or '.join(ENCODINGS)})")
        _, test = load_dataset(dataset, data_dir)
        x, y = test.x[:limit], test.y[:limit]
        steps = steps or int(net.meta.get("timesteps", 64))
        return Split(test.name, encode(encoding, x, net), y), steps, f"{encoding}, {steps} steps"
    recorded = net.meta.get(META_KEY)
    if encoding is None and recorded is not None:
        x, y, presented = netlist_input_for(recorded, dataset, data_dir, steps, limit)
        latency = x.shape[1] - presented
        return (Split(f"{dataset}/test spikes", x, y), x.shape[1],
                f"{recorded.get('name')} (as train-bntt recorded it), {presented} steps presented + {latency} "
                f"steps through the layers = {x.shape[1]} steps")
    if encoding == "rate":
        _, test = load_dataset(dataset, data_dir)
        steps = steps or int(net.meta.get("timesteps", 64))
        x = rate_spikes(test.x[:limit], net, steps)
        return Split(f"{test.name} rate spikes", x, test.y[:limit]), steps, f"rate (Bernoulli), {steps} steps"
    if encoding is not None:
        raise NeurosimError(f"--encoding {encoding} drives an 'input' layer; {name} takes spikes "
                            f"{tuple(net.input_shape)} per step: use --encoding rate or --input FILE.npy")
    raise NeurosimError(f"{name} takes spikes {tuple(net.input_shape)} per step and records no input "
                        "encoding (train-bntt's nets do): pass --encoding rate (each pixel the spike probability "
                        "per step) or your own spikes with --input FILE.npy")


def run_dataset(net: Netlist, name: Path, test: Split, steps: int, *, encoding: str, timing: str,
                mode: str = "fixed", sweep: Optional[Sequence[int]] = None, lava_samples: Union[int, str] = 0,
                lava_timeout: Optional[float] = None, lava_workers: int = 1,
                lava_modes: Sequence[str] = MODES, out: Optional[Path] = None, device: str = "cpu") -> dict:
    """Measure ``net`` (read from the file ``name``) on ``test`` as :func:`neurosim.evaluate.evaluate`
    does (Lava in ``lava_modes``, default fixed_pt and floating_pt, side by side on ``lava_samples`` samples, or on the
    whole split with ``"all"``, ``lava_workers`` worker processes per mode) and write
    ``<out>/<name's stem>-report.json`` and ``.png`` (``out`` default: :func:`default_out`;
    ``device``: where float mode's synaptic maps compute, :class:`~neurosim.sim.simulator.Simulator`);
    returns the report, with the ``encoding`` line and the ``timing`` in it and the files
    written in ``report_paths``."""
    report = measure.evaluate(net, test, steps, ann_accuracy=net.meta.get("ann_accuracy"), mode=mode,
                              sweep=sweep, lava_samples=lava_samples, lava_modes=lava_modes,
                              lava_timeout=lava_timeout, lava_workers=lava_workers, device=device)
    report.update({"netlist": str(name), "encoding": encoding, "timing": timing,
                   "ann_test_samples": net.meta.get("ann_test_samples")})
    json_path, png_path = measure.write_report(report, out or default_out(name), stem=f"{Path(name).stem}-report")
    report["report_paths"] = [str(json_path), str(png_path)]
    return report


def loihi2_accuracy(net: Netlist, test: Split, steps: int, timeout: Optional[float] = None) -> float:
    """Accuracy of ``net`` on the ``test`` samples run on a Loihi 2 (Lava's Loihi2HwCfg)."""
    res = run_loihi2(net, test.x, steps, timeout=timeout)
    return float((res.predictions == test.y).mean())


@dataclass
class ArrayRun:
    """A run of the user's array: how many samples, over how many steps, and what the simulator produced."""
    samples: int
    steps: int
    result: SimResult


def run_array(net: Netlist, path: Path, *, mode: str = "fixed", steps: Optional[int] = None,
              time_axis: str = "first", layout: str = "chw", raw_current: bool = False,
              record_spikes: bool = False, device: str = "cpu") -> ArrayRun:
    """The ``.npy`` array at ``path`` through the simulator (:mod:`neurosim.data.npy_input` says
    which shapes it takes); ``steps`` defaults to the netlist's metadata (else 64) for a net with
    an input layer and to the array's time axis for a spike-input net. ``raw_current``: the
    array holds the input neurons' bias current in mantissas. ``record_spikes`` keeps every
    layer's spikes (for :func:`neurosim.data.npy_input.save_run`). ``device``: where float
    mode's synaptic maps compute."""
    if raw_current and not net.has_input_layer:
        raise NeurosimError("--raw-current needs a net with an 'input' layer; this one takes spikes")
    steps = steps or (int(net.meta.get("timesteps", 64)) if net.has_input_layer else None)
    x, steps = samples_from_array(load_npy(path), net, time_axis=time_axis, layout=layout,
                                  steps=steps, source=str(path))
    if len(x) == 0:
        raise NeurosimError(f"{path}: holds no samples (array of {len(x)} samples); nothing to run")
    res = Simulator(net, mode, device=device).run(x, steps, raw_current=raw_current, record_spikes=record_spikes)
    return ArrayRun(len(x), steps, res)
