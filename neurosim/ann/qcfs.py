"""QCFS: the quantisation-clip-floor-shift activation for low-latency ANN->SNN conversion.

Bu, Fang, Ding, Dai, Yu & Huang, "Optimal ANN-SNN Conversion for High-accuracy and
Ultra-low-latency Spiking Neural Networks", ICLR 2022 (reference code: putshua/ANN_SNN_QCFS).

A ReLU is replaced, during ANN training, by

    h(x) = lambda * clip( floor(x * L / lambda + 1/2) / L, 0, 1 )

with ``L`` quantisation levels and a trainable threshold ``lambda`` per layer. Equivalently
(as computed here, and in the reference code): ``u = clamp(x / lambda, 0, 1)``,
``h = lambda * floor(L * u + 1/2) / L``. ``floor`` has a straight-through gradient
(d floor(z)/dz := 1), so

    dh/dx      = 1                        if 0 <= x <= lambda, else 0
    dh/dlambda = h/lambda - x/lambda      if 0 <= x <= lambda;  1 if x > lambda;  0 if x < 0.

Why: an integrate-and-fire neuron with threshold ``theta = lambda``, reset by subtraction
(soft reset, RMP) and initial membrane potential ``theta / 2``, driven for ``T = L`` steps by a
constant input ``x``, emits exactly ``floor(x * T / theta + 1/2)`` spikes (clipped to ``[0, T]``),
so its average output ``theta * spikes / T`` *is* ``h(x)``; the paper proves the expected
conversion error is zero for any ``T`` when the shift is 1/2 (and small when T != L), and
reports VGG-16 on CIFAR-10 at 94.95 % with T = 8 (ANN 95.52 %, L = 4). That expectation
assumes ``x`` spread evenly within each step of the staircase; as ``T`` grows the neuron's
output tends to ``clip(x, 0, lambda)``, which passes the inputs in ``(0, lambda / 2L)`` that
``h`` zeroes. A net trained to rely on that zero bin converges to another function (issue 19:
the reference code's lambda = 8 start under Adam); hence :class:`QCFS` starts lambda from
data by default.

Converting a QCFS-trained model (:func:`neurosim.convert.rmp.convert`, ``neurosim convert``):
every :class:`QCFS` is a ReLU whose firing threshold is its trained ``threshold`` (no data-based
balancing for those layers), with initial membrane potential theta/2 and soft reset.
:func:`thresholds` lists them; :func:`relu_equivalent` gives back a plain-ReLU copy (same
weights) for converters that calibrate their own thresholds. :class:`QCFSTracer`
traces a model with QCFS kept as one leaf node.
"""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_LEVELS = 4          # the paper's L for CIFAR-10
DEFAULT_THRESHOLD = 8.0     # the reference code's initial lambda
#: the default start of lambda: this percentile of the layer's positive input on the first
#: training batch (docs/conversion.md, QCFS: started at 8, or at the 95th percentile or above,
#: the MNIST CNN learned to rely on QCFS's zero bin and its SNN lost accuracy with T)
INIT_PERCENTILE = 75.0
MIN_THRESHOLD = 1e-3


def positive_percentile(x: torch.Tensor, percentile: float) -> float:
    """The ``percentile`` of the positive entries of ``x`` (:data:`DEFAULT_THRESHOLD` if none)."""
    a = x.detach().reshape(-1)
    a = a[a > 0]
    return float(np.percentile(a.cpu().double().numpy(), percentile)) if a.numel() else DEFAULT_THRESHOLD


def floor_ste(z: torch.Tensor) -> torch.Tensor:
    """``floor(z)`` forward, identity gradient backward (straight-through); fx-traceable."""
    return z + (torch.floor(z) - z).detach()


def qcfs(x: torch.Tensor, threshold: torch.Tensor, levels: int) -> torch.Tensor:
    """``threshold * clip(floor(x * levels / threshold + 0.5) / levels, 0, 1)`` with STE floor."""
    u = torch.clamp(x / threshold, 0.0, 1.0)
    return floor_ste(u * levels + 0.5) / levels * threshold


class QCFS(nn.Module):
    """Quantisation-clip-floor-shift activation with a trainable threshold (one per layer).

    ``levels`` (L) is a plain attribute (also in ``extra_repr``); ``threshold`` (lambda) is a
    0-d parameter, so it is in the ``state_dict`` as ``<name>.threshold``.

    ``threshold=None`` (the default) sets lambda from data: on the first batch the module sees
    in training mode, lambda becomes the :data:`INIT_PERCENTILE`-th percentile of its positive
    input. Why: QCFS outputs 0 for every input below ``lambda / 2L``, while the converted
    SNN's rate tends to ``clip(x, 0, lambda) / lambda`` as T grows (see
    :func:`neurosim.convert.rmp.qcfs_limit_agreement`). A lambda far above the inputs (the
    reference code's 8 against BatchNorm outputs of order 1, which Adam, moving one scalar by
    at most its learning rate per step, does not correct in a short training) puts most of
    them in that zero bin; the net learns to rely on it and its SNN loses accuracy as T grows.
    A given ``threshold`` (e.g. :data:`DEFAULT_THRESHOLD`) is used as it is.
    """

    def __init__(self, levels: int = DEFAULT_LEVELS, threshold: Optional[float] = None):
        super().__init__()
        if int(levels) < 1:
            raise ValueError(f"QCFS needs levels >= 1, got {levels}")
        if threshold is not None and not threshold > 0:
            raise ValueError(f"QCFS needs a positive threshold, got {threshold}")
        self.levels = int(levels)
        self.threshold = nn.Parameter(torch.tensor(float(DEFAULT_THRESHOLD if threshold is None else threshold)))
        #: True until lambda is set from data: by the first batch seen in training mode,
        #: :func:`calibrate_thresholds` or a loaded ``state_dict``
        self.from_data = threshold is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32 even under bfloat16 autocast: floor() on an 8-bit mantissa would move levels
        x = x.float()
        if self.from_data and self.training:
            self.set_threshold(positive_percentile(x, INIT_PERCENTILE))
        return qcfs(x, self.threshold, self.levels)

    @torch.no_grad()
    def set_threshold(self, value: float) -> None:
        """Set lambda (at least :data:`MIN_THRESHOLD`); it is then no longer set from data."""
        self.threshold.fill_(max(float(value), MIN_THRESHOLD))
        self.from_data = False

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + "threshold" in state_dict:
            self.from_data = False

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={float(self.threshold):.4g}"


class QCFSTracer(fx.Tracer):
    """``torch.fx`` tracer that keeps every :class:`QCFS` as a single ``call_module`` node."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, QCFS) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` trace of ``model`` with QCFS activations as leaves."""
    graph = QCFSTracer().trace(model)
    return fx.GraphModule(model, graph)


_FUNCTIONAL_RELU = (F.relu, torch.relu, torch.nn.functional.relu)


def _replace_modules(module: nn.Module, make) -> int:
    count = 0
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, make())
            count += 1
        else:
            count += _replace_modules(child, make)
    return count


def replace_relu(model: nn.Module, levels: int = DEFAULT_LEVELS,
                 threshold: Optional[float] = None) -> nn.Module:
    """Swap every ReLU of ``model`` for its own :class:`QCFS` (``levels``, initial ``threshold``;
    None: from the first training batch, see :class:`QCFS`).

    ``nn.ReLU`` modules are replaced in place (so parameter names and the class stay the
    same, and the model is returned). If the model also calls ReLU as a function
    (``F.relu``, ``torch.relu``, ``x.relu()``), it is traced with ``torch.fx`` and those
    calls become ``call_module`` nodes of new QCFS submodules named ``qcfs_<k>``; the result
    is then a ``GraphModule`` (same parameters and buffers).
    """
    make = lambda: QCFS(levels, threshold)  # noqa: E731
    _replace_modules(model, make)
    gm = trace(model)
    functional = [n for n in gm.graph.nodes
                  if (n.op == "call_function" and n.target in _FUNCTIONAL_RELU)
                  or (n.op == "call_method" and n.target in ("relu", "relu_"))]
    if not functional:
        return model
    for k, node in enumerate(functional):
        name = f"qcfs_{k}"
        while hasattr(gm, name):
            name += "_"
        gm.add_submodule(name, make())
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(name, (node.args[0],))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


def qcfs_modules(model: nn.Module) -> dict[str, QCFS]:
    """Every QCFS of ``model`` by qualified name, in module order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QCFS)}


def thresholds(model: nn.Module) -> dict[str, float]:
    """The trained lambda of every QCFS (the SNN firing thresholds), by module name."""
    return {name: float(m.threshold) for name, m in qcfs_modules(model).items()}


def set_levels(model: nn.Module, levels: int) -> nn.Module:
    """Set L of every QCFS (e.g. to fine-tune or evaluate at another quantisation)."""
    for m in qcfs_modules(model).values():
        m.levels = int(levels)
    return model


@torch.no_grad()
def calibrate_thresholds(model: nn.Module, x: torch.Tensor, percentile: float = 99.9) -> dict[str, float]:
    """Optional: initialise every lambda to the ``percentile`` of its positive input on ``x``.

    Not in the paper (which starts all thresholds at 8); useful when the input scale is far
    from that (e.g. images in [0, 1] without normalisation). Runs ``model`` once in eval mode
    (so every QCFS still unset computes with the placeholder :data:`DEFAULT_THRESHOLD`), then
    sets every lambda at once; they are no longer set from the first training batch.
    """
    found: dict[str, list] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: found.setdefault(name, []).append(inp[0]))
             for name, m in qcfs_modules(model).items()]
    was_training = model.training
    try:
        model.eval()
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    mods = qcfs_modules(model)
    out = {}
    for name, acts in found.items():
        mods[name].set_threshold(positive_percentile(torch.cat([t.reshape(-1) for t in acts]), percentile))
        out[name] = float(mods[name].threshold)
    return out


def relu_equivalent(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every QCFS back to ``nn.ReLU`` (weights unchanged)."""
    model = copy.deepcopy(model)

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, QCFS):
                setattr(module, name, nn.ReLU())
            else:
                swap(child)
    swap(model)
    return model


__all__ = ["QCFS", "QCFSTracer", "qcfs", "floor_ste", "replace_relu", "trace", "thresholds",
           "qcfs_modules", "set_levels", "calibrate_thresholds", "relu_equivalent", "positive_percentile",
           "DEFAULT_LEVELS", "DEFAULT_THRESHOLD", "INIT_PERCENTILE", "MIN_THRESHOLD"]
