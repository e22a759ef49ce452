"""Neuron dynamics, written once per numeric mode and shared by every executor.

:mod:`neurosim.dynamics.lif` holds pure step functions over NumPy arrays (Lava
ProcessModels) or PyTorch tensors (the batched simulator).
"""
