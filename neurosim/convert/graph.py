"""Trace a PyTorch model into a small DAG of conversion stages (torch.fx).

:func:`trace` turns any ``nn.Module`` that ``torch.fx`` can trace into a :class:`StageGraph`:
a list of :class:`Stage` in topological order, each knowing its inputs (earlier stage
indices), its output shape per sample and whether a ReLU follows it. Stage kinds:

- ``input``: the model's input (one placeholder);
- ``conv`` / ``dense``: Conv2d / Linear with any following BatchNorm folded in (running
  statistics: the model is traced in ``eval()`` mode and its modes restored afterwards);
  ``padding='same'`` becomes explicit symmetric padding;
- ``pool``: average pooling (AvgPool2d, AdaptiveAvgPool2d to a size dividing the input,
  ``F.avg_pool2d``, ``mean`` over H and W), a uniform kernel;
- ``flatten``: Flatten, ``torch.flatten(x, 1)``, ``x.view(x.size(0), -1)``, ``reshape``;
- ``add``: the sum of two branches (``+``, ``torch.add``), e.g. a residual join.

ReLU (module, ``F.relu``, ``torch.relu``, ``x.relu()``) sets ``relu`` on the stage it follows;
a QCFS activation (:class:`neurosim.ann.qcfs.QCFS`, traced as one leaf) does too and also records
its trained threshold ``clip`` (lambda) and ``levels`` (L), which become that population's firing
threshold in conversion. Dropout and Identity are dropped. Anything else (MaxPool2d, other activations, ``cat``, ...)
is refused with one :class:`NeurosimError` line naming the node and its type.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from neurosim.ann.qcfs import QCFS, QCFSTracer, qcfs
from neurosim.errors import NeurosimError

Shape = tuple[int, ...]


@dataclass
class Stage:
    """One node of the conversion DAG (see the module docstring)."""
    kind: str                          # input, conv, dense, pool, flatten, add
    name: str                          # the fx node it comes from (for messages)
    inputs: list[int]
    shape: Shape                       # output shape per sample
    weight: Optional[np.ndarray] = None   # conv (O, I/g, kh, kw), dense (O, I), pool (kh, kw)
    bias: Optional[np.ndarray] = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    relu: bool = False
    clip: Optional[float] = None       # QCFS threshold lambda (with ``relu``), else None
    levels: Optional[int] = None       # QCFS quantisation levels L

    def apply(self, *xs: torch.Tensor, activation: bool = True, qcfs_limit: bool = False) -> torch.Tensor:
        """The stage on a batch (float tensors), its ReLU / QCFS included if ``activation``
        (QCFS as its limit, see :meth:`activate`, if ``qcfs_limit``)."""
        x = xs[0] if xs else None
        if self.kind == "input":
            y = x
        elif self.kind == "conv":
            y = F.conv2d(x, _t(self.weight, x), None if self.bias is None else _t(self.bias, x),
                         self.stride, self.padding, self.dilation, self.groups)
        elif self.kind == "dense":
            y = F.linear(x, _t(self.weight, x), None if self.bias is None else _t(self.bias, x))
        elif self.kind == "pool":
            c = x.shape[1]
            k = _t(self.weight, x).expand(c, 1, *self.weight.shape)
            y = F.conv2d(x, k, None, self.stride, self.padding, groups=c)
        elif self.kind == "flatten":
            y = x.reshape(x.shape[0], -1)
        elif self.kind == "add":
            y = xs[0] + xs[1]
        else:                                            # pragma: no cover
            raise NeurosimError(f"unknown stage kind {self.kind}")
        return self.activate(y, qcfs_limit) if activation else y

    def activate(self, y: torch.Tensor, qcfs_limit: bool = False) -> torch.Tensor:
        """The stage's activation on its pre-activation ``y``: QCFS, ReLU or none. With
        ``qcfs_limit`` a QCFS is its limit for L -> infinity, ``clip(y, 0, lambda)``: the rate an
        IF neuron of threshold lambda (soft reset) tends to as T grows, whatever L."""
        if self.clip is not None:
            if qcfs_limit:
                return y.clamp(0.0, self.clip)
            return qcfs(y, torch.as_tensor(self.clip, dtype=y.dtype), self.levels)
        return torch.relu(y) if self.relu else y


def connections(st: Stage, in_shape: Shape) -> int:
    """Real connections (= ANN multiply-accumulates) of a conv, pool or dense stage on inputs of
    ``in_shape``: a dense layer's weights; a conv's or pool's taps that land inside the input
    (padding adds none, so border neurons have fewer)."""
    if st.kind == "dense":
        return int(np.prod(st.weight.shape))
    ones = Stage(st.kind, st.name, [], st.shape, np.ones_like(st.weight), None, st.stride, st.padding,
                 st.dilation, st.groups)
    return int(ones.apply(torch.ones((1, *in_shape), dtype=torch.float64), activation=False).sum())


def _t(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``a`` as a tensor of ``like``'s dtype on ``like``'s device (the calibration's device)."""
    return torch.as_tensor(a, dtype=like.dtype, device=like.device)


@dataclass
class StageGraph:
    """Stages in topological order; ``output`` is the stage the model returns."""
    stages: list[Stage]
    output: int
    input_shape: Shape
    meta: dict = field(default_factory=dict)

    def macs(self) -> int:
        """The ANN's multiply-accumulates per inference: every real connection (borders: fewer)
        of every conv, dense and pooling stage, as :func:`neurosim.metrics.synops.ann_macs`
        counts a netlist's."""
        return sum(connections(st, self.stages[st.inputs[0]].shape) for st in self.stages
                   if st.kind in ("conv", "pool", "dense"))

    def consumers(self, i: int) -> list[int]:
        return [j for j, s in enumerate(self.stages) if i in s.inputs]

    @torch.no_grad()
    def forward(self, x: torch.Tensor, qcfs_limit: bool = False) -> list[torch.Tensor]:
        """Every stage's output (after its ReLU) for the batch ``x``; with ``qcfs_limit``, every
        QCFS as ``clip(y, 0, lambda)`` (:meth:`Stage.activate`): what the converted SNN computes
        as T grows."""
        outs: list[torch.Tensor] = []
        for st in self.stages:
            outs.append(x if st.kind == "input" else st.apply(*(outs[i] for i in st.inputs), qcfs_limit=qcfs_limit))
        return outs


# ------------------------------------------------------------------------------------ helpers

def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _describe(node) -> str:
    if node.op == "call_module":
        return f"call_module {type(node.graph.owning_module.get_submodule(node.target)).__name__} " \
               f"'{node.target}'"
    if node.op == "call_function":
        return f"call_function {getattr(node.target, '__module__', '') or ''}." \
               f"{getattr(node.target, '__name__', node.target)}".replace("_operator.", "operator.")
    return f"{node.op} {node.target}"


def _refuse(node, why: str) -> NeurosimError:
    return NeurosimError(f"cannot convert node '{node.name}' ({_describe(node)}): {why}")


def conv_padding(m: nn.Conv2d, node) -> tuple[int, int]:
    """Explicit symmetric padding of a Conv2d (``'same'`` resolved, asymmetric refused)."""
    if m.padding_mode != "zeros":
        raise _refuse(node, f"padding_mode '{m.padding_mode}' is not supported (only 'zeros')")
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return 0, 0
        pads = []
        for k, d in zip(m.kernel_size, m.dilation):
            total = d * (k - 1)
            if total % 2:
                raise _refuse(node, f"padding='same' with kernel {tuple(m.kernel_size)} and dilation "
                                    f"{tuple(m.dilation)} pads asymmetrically, which the netlist's conv "
                                    "cannot express; use an odd kernel or explicit padding")
            pads.append(total // 2)
        return pads[0], pads[1]
    return _pair(m.padding)


def _fold_bn(st: Stage, bn: nn.Module, node) -> None:
    if bn.running_mean is None or bn.running_var is None:
        raise _refuse(node, "BatchNorm without running statistics (track_running_stats=False) cannot be folded")
    var = bn.running_var.detach().double().numpy()
    mean = bn.running_mean.detach().double().numpy()
    gamma = bn.weight.detach().double().numpy() if bn.weight is not None else np.ones_like(mean)
    beta = bn.bias.detach().double().numpy() if bn.bias is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn.eps)
    st.weight = st.weight * scale.reshape(-1, *([1] * (st.weight.ndim - 1)))
    st.bias = (st.bias if st.bias is not None else 0.0) * scale + beta - mean * scale


def _numpy(p: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    return None if p is None else p.detach().double().numpy().copy()


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_}
_ADD_FUNCS = {operator.add, operator.iadd, torch.add}
_DROP_FUNCS = {F.dropout, F.dropout2d, torch.dropout}
_PASS_METHODS = {"contiguous", "clone", "detach"}


# ------------------------------------------------------------------------------------ tracing

class _Builder:
    def __init__(self, gm, input_shape: Shape) -> None:
        self.gm = gm
        self.stages: list[Stage] = []
        self.value: dict[str, Any] = {}      # node name -> stage index, or ('size', ...) for non-tensors
        self.input_shape = tuple(input_shape)

    def module(self, node):
        return self.gm.get_submodule(node.target)

    def shape(self, node) -> Shape:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise _refuse(node, "its output is not a single tensor")
        return tuple(int(s) for s in meta.shape[1:])

    def src(self, node, arg) -> int:
        if not isinstance(arg, torch.fx.Node) or not isinstance(self.value.get(arg.name), int):
            raise _refuse(node, f"argument {arg!r} is not a tensor computed from the input")
        return self.value[arg.name]

    def add(self, st: Stage) -> int:
        self.stages.append(st)
        return len(self.stages) - 1

    def relu(self, node, arg, clip: Optional[QCFS] = None) -> int:
        i = self.src(node, arg)
        st = self.stages[i]
        if clip is not None:
            if st.relu or st.kind not in ("conv", "dense", "add"):
                raise _refuse(node, "a QCFS activation must directly follow a Conv2d, Linear or residual "
                                    "join (with its BatchNorm)")
            if len(arg.users) > 1:
                raise _refuse(node, f"the value before this QCFS ('{arg.name}') is also used elsewhere")
            st.relu, st.clip, st.levels = True, float(clip.threshold), int(clip.levels)
            if not st.clip > 0:
                raise _refuse(node, f"QCFS threshold must be positive, got {st.clip}")
            return i
        if st.relu or (st.kind == "pool" and self.stages[st.inputs[0]].relu):
            return i                                     # ReLU of non-negative values: nothing to do
        if st.kind == "flatten":
            inner = self.stages[st.inputs[0]]
            if inner.relu:
                return i
            raise _refuse(node, "a ReLU after a flatten of a value without ReLU is not supported; "
                                "put the ReLU before the flatten")
        if st.kind == "input":
            raise _refuse(node, "a ReLU on the model's input is not supported")
        if len(arg.users) > 1:
            raise _refuse(node, f"the value before this ReLU ('{arg.name}') is also used elsewhere "
                                "without the ReLU")
        st.relu = True
        return i

    def pool(self, node, arg, kernel, stride, padding, divisor=None, ceil_mode=False,
             count_include_pad=True) -> int:
        i = self.src(node, arg)
        in_shape = self.stages[i].shape
        if len(in_shape) != 3:
            raise _refuse(node, f"average pooling needs (C, H, W) input, got {in_shape}")
        kernel, stride, padding = _pair(kernel), _pair(stride if stride else kernel), _pair(padding)
        if ceil_mode:
            raise _refuse(node, "ceil_mode=True is not supported")
        if any(padding) and not count_include_pad:
            raise _refuse(node, "count_include_pad=False with padding is not a uniform kernel")
        w = np.full(kernel, 1.0 / (divisor or kernel[0] * kernel[1]))
        return self.add(Stage("pool", node.name, [i], self.shape(node), w, None, stride, padding))

    def adaptive(self, node, arg, size) -> int:
        i = self.src(node, arg)
        in_shape = self.stages[i].shape
        if len(in_shape) != 3:
            raise _refuse(node, f"adaptive average pooling needs (C, H, W) input, got {in_shape}")
        size = size if isinstance(size, (tuple, list)) else (size, size)
        out = [in_shape[1 + k] if s is None else int(s) for k, s in enumerate(size)]
        if any(in_shape[1 + k] % out[k] for k in range(2)):
            raise _refuse(node, f"adaptive pooling of {in_shape[1:]} to {tuple(out)}: the output size "
                                "must divide the input size (uneven windows are not one kernel)")
        k = (in_shape[1] // out[0], in_shape[2] // out[1])
        return self.pool(node, arg, k, k, 0)

    def flatten(self, node, arg) -> int:
        i = self.src(node, arg)
        out = self.shape(node)
        if out == self.stages[i].shape:
            return i
        if out != (math.prod(self.stages[i].shape),):
            raise _refuse(node, f"reshape of {self.stages[i].shape} to {out} per sample: only a flatten "
                                "to (batch, -1) is supported")
        return self.add(Stage("flatten", node.name, [i], out))

    def join(self, node, a, b) -> int:
        if not (isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node)):
            raise _refuse(node, "only the sum of two tensors (a residual join) is supported, "
                                "not a tensor plus a constant")
        i, j = self.src(node, a), self.src(node, b)
        if self.stages[i].shape != self.stages[j].shape:
            raise _refuse(node, f"adds shapes {self.stages[i].shape} and {self.stages[j].shape} "
                                "(broadcasting is not supported)")
        return self.add(Stage("add", node.name, [i, j], self.shape(node)))

    def linear_module(self, node, m) -> int:
        i = self.src(node, node.args[0])
        in_shape = self.stages[i].shape
        if isinstance(m, nn.Conv2d):
            if len(in_shape) != 3:
                raise _refuse(node, f"Conv2d needs (C, H, W) input, got {in_shape}")
            return self.add(Stage("conv", node.name, [i], self.shape(node), _numpy(m.weight), _numpy(m.bias),
                                  _pair(m.stride), conv_padding(m, node), _pair(m.dilation), int(m.groups)))
        if len(in_shape) != 1:
            raise _refuse(node, f"Linear on a {len(in_shape) + 1}-D tensor {in_shape}: flatten to "
                                "(batch, features) first")
        return self.add(Stage("dense", node.name, [i], self.shape(node), _numpy(m.weight), _numpy(m.bias)))

    def batchnorm(self, node, m) -> int:
        arg = node.args[0]
        i = self.src(node, arg)
        st = self.stages[i]
        if st.kind not in ("conv", "dense") or st.relu:
            raise _refuse(node, "BatchNorm must directly follow a Conv2d or Linear (to be folded into it)")
        if len(arg.users) > 1:
            raise _refuse(node, f"the value before this BatchNorm ('{arg.name}') is also used elsewhere")
        _fold_bn(st, m, node)
        return i

    def mean(self, node, arg, dims, keepdim=False) -> int:
        i = self.src(node, arg)
        in_shape = self.stages[i].shape
        dims = tuple(sorted(d % (len(in_shape) + 1) for d in (dims if isinstance(dims, (tuple, list)) else [dims])))
        if len(in_shape) != 3 or dims != (2, 3):
            raise _refuse(node, "only a mean over the spatial dimensions (2, 3) of (N, C, H, W) is supported")
        k = in_shape[1:]
        p = self.add(Stage("pool", node.name, [i], (in_shape[0], 1, 1), np.full(k, 1.0 / (k[0] * k[1])),
                           None, k, (0, 0)))
        if keepdim:
            return p
        return self.add(Stage("flatten", node.name + "_flat", [p], (in_shape[0],)))

    def node(self, node) -> Any:
        op, tgt, args, kw = node.op, node.target, node.args, node.kwargs
        if op == "placeholder":
            if self.stages:
                raise _refuse(node, "the model must take exactly one input tensor")
            return self.add(Stage("input", node.name, [], self.input_shape))
        if op == "get_attr":
            raise _refuse(node, "tensors stored on the model (parameters or buffers used directly) "
                                "are not supported")
        if op == "call_module":
            m = self.module(node)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                return self.linear_module(node, m)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                return self.batchnorm(node, m)
            if isinstance(m, nn.ReLU):
                return self.relu(node, args[0])
            if isinstance(m, QCFS):
                return self.relu(node, args[0], clip=m)
            if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)):
                return self.src(node, args[0])
            if isinstance(m, nn.AvgPool2d):
                return self.pool(node, args[0], m.kernel_size, m.stride, m.padding, m.divisor_override,
                                 m.ceil_mode, m.count_include_pad)
            if isinstance(m, nn.AdaptiveAvgPool2d):
                return self.adaptive(node, args[0], m.output_size)
            if isinstance(m, nn.Flatten):
                if m.start_dim != 1 or m.end_dim != -1:
                    raise _refuse(node, "only Flatten(start_dim=1, end_dim=-1) is supported")
                return self.flatten(node, args[0])
            hint = " (use AvgPool2d: max pooling has no rate-coded equivalent here)" \
                if isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)) else ""
            raise _refuse(node, f"{type(m).__name__} is not supported{hint}")
        if op == "call_function":
            if tgt in _RELU_FUNCS:
                return self.relu(node, args[0])
            if tgt in _ADD_FUNCS:
                if kw.get("alpha", 1) != 1 or len(args) != 2:
                    raise _refuse(node, "only a + b (no alpha) is supported")
                return self.join(node, args[0], args[1])
            if tgt in _DROP_FUNCS:
                return self.src(node, args[0])
            if tgt is torch.flatten:
                start = args[1] if len(args) > 1 else kw.get("start_dim", 0)
                end = args[2] if len(args) > 2 else kw.get("end_dim", -1)
                if start != 1 or end != -1:
                    raise _refuse(node, "only torch.flatten(x, 1) is supported")
                return self.flatten(node, args[0])
            if tgt is torch.reshape:
                return self.flatten(node, args[0])
            if tgt is F.avg_pool2d:
                a = list(args) + [None] * 7
                get = lambda k, n, d: kw.get(n, a[k] if a[k] is not None else d)  # noqa: E731
                return self.pool(node, args[0], get(1, "kernel_size", None), get(2, "stride", None),
                                 get(3, "padding", 0), get(6, "divisor_override", None),
                                 get(4, "ceil_mode", False), get(5, "count_include_pad", True))
            if tgt is F.adaptive_avg_pool2d:
                return self.adaptive(node, args[0], args[1] if len(args) > 1 else kw["output_size"])
            if tgt is torch.mean:
                return self.mean(node, args[0], args[1] if len(args) > 1 else kw.get("dim"),
                                 args[2] if len(args) > 2 else kw.get("keepdim", False))
            if tgt is getattr and len(args) == 2 and args[1] == "shape":
                return ("size",)
            if tgt is operator.getitem and isinstance(self.value.get(getattr(args[0], "name", None)), tuple):
                return ("size",)
            raise _refuse(node, "this function is not supported")
        if op == "call_method":
            if tgt in ("relu", "relu_"):
                return self.relu(node, args[0])
            if tgt in ("add", "add_", "__add__"):
                if kw.get("alpha", 1) != 1:
                    raise _refuse(node, "only a + b (no alpha) is supported")
                return self.join(node, args[0], args[1])
            if tgt in ("view", "reshape", "flatten"):
                if tgt == "flatten" and (args[1:2] or [kw.get("start_dim", 0)])[0] != 1:
                    raise _refuse(node, "only x.flatten(1) is supported")
                return self.flatten(node, args[0])
            if tgt == "size":
                return ("size",)
            if tgt == "mean":
                return self.mean(node, args[0], args[1] if len(args) > 1 else kw.get("dim"),
                                 args[2] if len(args) > 2 else kw.get("keepdim", False))
            if tgt in _PASS_METHODS:
                return self.src(node, args[0])
            raise _refuse(node, f"the tensor method '{tgt}' is not supported")
        raise _refuse(node, "unsupported node")


def trace(model: nn.Module, input_shape: Shape, check: bool = True) -> StageGraph:
    """The stage DAG of ``model`` for inputs of ``input_shape`` (per sample).

    The model is put in ``eval()`` for tracing and folding and every module's training flag is
    restored afterwards. With ``check``, the DAG is run beside the model on a random batch and
    must agree with it (a tracing or folding error is reported, never silently converted).
    """
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        try:
            gm = torch.fx.GraphModule(model, QCFSTracer().trace(model))
        except Exception as exc:                     # noqa: BLE001 - any fx failure is the user's model
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NeurosimError(f"torch.fx cannot trace {type(model).__name__}: {msg}") from None
        gm.graph.eliminate_dead_code()
        x = torch.rand(2, *input_shape)
        try:
            with torch.no_grad():
                ShapeProp(gm).propagate(x)
        except Exception as exc:                     # noqa: BLE001
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NeurosimError(f"{type(model).__name__} does not run on inputs of shape "
                                f"{tuple(input_shape)}: {msg}") from None
        b = _Builder(gm, input_shape)
        output = None
        for node in gm.graph.nodes:
            if node.op == "output":
                out = node.args[0]
                if not isinstance(out, torch.fx.Node) or not isinstance(b.value.get(out.name), int):
                    raise _refuse(node, "the model must return one tensor")
                output = b.value[out.name]
                continue
            if not node.users and node.op != "placeholder":
                continue                             # dead code
            b.value[node.name] = b.node(node)
        if output is None or not any(s.kind in ("conv", "dense") for s in b.stages):
            raise NeurosimError(f"{type(model).__name__} has no Conv2d or Linear layer to convert")
        graph = StageGraph(b.stages, output, tuple(input_shape))
        if check:
            with torch.no_grad():
                ref = model(x.double().float()).double()
                got = graph.forward(x.double())[output]
            err = float((ref - got.reshape(ref.shape)).abs().max()) if ref.numel() == got.numel() else math.inf
            tol = 1e-3 * max(1.0, float(ref.abs().max()))
            if not err <= tol:
                raise NeurosimError(f"the traced graph of {type(model).__name__} disagrees with the model "
                                    f"(max difference {err:.3g}); it uses an operation the tracer mis-reads")
        return graph
    finally:
        for m, mode in modes.items():
            m.training = mode
