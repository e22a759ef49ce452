"""Neuron dynamics, written once per numeric mode and shared by every executor.

:mod:`neurosim.dynamics.lif` holds pure step functions over NumPy arrays (Lava
ProcessModels) or PyTorch tensors (the batched simulator).
"""

#: The numeric modes every executor implements: ``fixed`` (Loihi's integer arithmetic, what
#: Lava's ``fixed_pt`` models compute) and ``float`` (the same equations in floating point,
#: Lava's ``floating_pt``).
MODES = ("fixed", "float")
