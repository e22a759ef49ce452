"""A user's trained PyTorch model for ``neurosim convert``: where it is defined, its weights, and
whether it takes the data set's images. Every failure is one line naming the argument.

``--model`` names a class or factory in one of two ways:

- ``FILE.py:NAME``: a Python file; its folder is put first on the import path while the file
  runs, so it may import its sibling modules;
- ``package.module:NAME``: an importable module (``torchvision.models:resnet18``).

``NAME`` is an ``nn.Module`` subclass or a function returning one, called with the keyword
arguments of ``--model-args`` (a JSON object; none by default).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import pickle
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Optional, Union

import numpy as np
import torch

from neurosim.errors import NeurosimError

#: Keys listed in a "does not fit" message before "+N more".
SHOWN_KEYS = 4


def parse_model_args(text: Optional[str]) -> dict[str, Any]:
    """``--model-args`` JSON object -> keyword arguments."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NeurosimError(f"--model-args must be a JSON object such as '{{\"num_classes\": 10}}' ({exc})") from None
    if not isinstance(value, dict):
        raise NeurosimError(f"--model-args must be a JSON object of keyword arguments, got {type(value).__name__}")
    return value


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise NeurosimError(f"--model: no such file {path}")
    spec = importlib.util.spec_from_file_location(f"neurosim_user_model_{abs(hash(path.resolve()))}", path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)              # the file may import its siblings
    try:
        spec.loader.exec_module(module)
    except Exception as exc:                # the user's file: its error in one line
        raise NeurosimError(f"--model: {path} fails to import ({type(exc).__name__}: {exc})") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise NeurosimError(f"--model: cannot import module '{name}' ({type(exc).__name__}: {exc})") from None


def build_model(spec: str, model_args: Optional[dict[str, Any]] = None) -> torch.nn.Module:
    """The model ``spec`` names (module docstring), built with ``model_args``."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise NeurosimError(f"--model must be FILE.py:NAME or package.module:NAME, got '{spec}'")
    module = _import_file(Path(where)) if where.endswith(".py") or "/" in where else _import_module(where)
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        raise NeurosimError(f"--model: {where} defines no class or function '{name}'")
    kwargs = model_args or {}
    try:
        model = factory(**kwargs)
    except Exception as exc:
        how = f"with --model-args {json.dumps(kwargs)}" if kwargs else "without arguments (pass --model-args)"
        raise NeurosimError(f"--model: {name}() cannot be built {how} ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, torch.nn.Module):
        raise NeurosimError(f"--model: {name}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def read_state_dict(path: Union[str, Path]) -> dict[str, torch.Tensor]:
    """A ``state_dict`` from ``path`` (``torch.save(model.state_dict())``, or a neurosim checkpoint
    holding one under ``"model"``), read with ``weights_only=True``: no code in the file runs."""
    path = Path(path)
    if not path.is_file():
        raise NeurosimError(f"--weights: no such file {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise NeurosimError(f"--weights: {path} holds pickled Python objects (a whole model saved with "
                            "torch.save(model)?), which neurosim does not load because unpickling can run code; "
                            "save model.state_dict() instead") from None
    except Exception as exc:                # torch raises many types for files that are not its own
        raise NeurosimError(f"--weights: {path} is not a file written by torch.save "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'unreadable'})"
                            ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]              # a neurosim checkpoint (ann.pt)
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise NeurosimError(f"--weights: {path} holds a {type(state).__name__}, not a state_dict "
                            "(a dict of parameter names to tensors)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}     # saved from DataParallel
    return state


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, name: str) -> None:
    """Load ``state`` strictly; a mismatch names the missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model" for k in own
              if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = ([f"missing keys {_listed(missing)}"] if missing else []) + \
               ([f"unexpected keys {_listed(unexpected)}"] if unexpected else []) + \
               ([f"shape mismatch {_listed(shapes)}"] if shapes else [])
    if problems:
        raise NeurosimError(f"--weights: {source} does not fit {name}: " + "; ".join(problems))
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise NeurosimError(f"--weights: {source} does not fit {name} ({str(exc).splitlines()[0][:200]})") from None


def load_user_model(spec: str, weights: Optional[Path] = None,
                    model_args: Optional[dict[str, Any]] = None) -> torch.nn.Module:
    """The model ``spec`` names, with ``weights`` loaded strictly, in eval mode."""
    model = build_model(spec, model_args)
    if weights is not None:
        load_weights(model, read_state_dict(weights), str(weights), spec.rpartition(":")[2])
    return model.eval()


def check_takes(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, spec: str, dataset: str) -> None:
    """Refuse in one line a model that cannot take ``dataset``'s images ``x`` (N, C, H, W) or has
    fewer outputs than the data set has classes."""
    shape = tuple(x.shape[1:])
    try:
        with torch.no_grad():
            out = model(torch.as_tensor(np.ascontiguousarray(x[:2])))
    except Exception as exc:
        raise NeurosimError(f"--model {spec} does not take --dataset {dataset} images of shape {shape} "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise NeurosimError(f"--model {spec} returns {got} for a batch of {dataset} images; a classifier "
                            "returns (batch, classes)")
    classes = int(np.max(y)) + 1 if len(y) else 0
    if out.shape[1] < classes:
        raise NeurosimError(f"--model {spec} has {out.shape[1]} outputs, --dataset {dataset} has {classes} classes")
