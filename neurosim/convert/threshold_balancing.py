"""Layer-wise threshold balancing rules for ANN -> SNN conversion.

Each rule maps the ANN activations of one layer (over training data) to that layer's
firing threshold ``lambda`` in activation units; an IF neuron with threshold ``lambda``
then fires at rate ``a / lambda`` for an ANN activation ``a`` in ``[0, lambda]``.

- ``max`` (Diehl et al., IJCNN 2015, data-based normalisation): the largest activation.
- ``percentile`` (Rueckauer et al., Front. Neurosci. 2017): the p-th percentile of the
  positive activations (default 99.99), robust to rare outliers; saturates those outliers.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurosim.errors import NeurosimError

DEFAULT_RULE = "percentile"
DEFAULT_PERCENTILE = 99.99
_MAX_VALUES = 1 << 22   # activations sampled per layer, bounding memory and time


def _positive(acts: np.ndarray, seed: int = 0) -> np.ndarray:
    a = np.asarray(acts, dtype=np.float64).reshape(-1)
    a = a[a > 0]
    if a.size > _MAX_VALUES:
        a = np.random.default_rng(seed).choice(a, _MAX_VALUES, replace=False)
    return a


def max_activation(acts: np.ndarray, percentile: float = 100.0) -> float:
    """Diehl 2015: the maximum activation."""
    a = _positive(acts)
    return float(a.max()) if a.size else 1.0


def percentile_activation(acts: np.ndarray, percentile: float = DEFAULT_PERCENTILE) -> float:
    """Rueckauer 2017: the ``percentile``-th percentile of the positive activations."""
    a = _positive(acts)
    return float(np.percentile(a, percentile)) if a.size else 1.0


RULES: dict[str, Callable[..., float]] = {"max": max_activation, "percentile": percentile_activation}


def balance(activations: list[np.ndarray], rule: str = DEFAULT_RULE,
            percentile: float = DEFAULT_PERCENTILE) -> list[float]:
    """One threshold per layer from that layer's activations."""
    if rule not in RULES:
        raise NeurosimError(f"unknown threshold rule '{rule}' (known: {', '.join(RULES)})")
    if not 0 < percentile <= 100:
        raise NeurosimError(f"percentile must be in (0, 100], got {percentile}")
    return [RULES[rule](a, percentile) for a in activations]
