"""Training recipes (``python -m models.<name>`` from the repository root; not installed) for the
architectures in :mod:`neurosim.architectures`."""
