"""The logic behind the ``neurosim`` commands, callable from Python; :mod:`neurosim.cli` parses
the arguments, calls these and prints.

- :mod:`.outputs`  where ``run`` and ``loihi2-report`` write by default;
- :mod:`.run`      ``run``: what drives a netlist (a data set's test split through an encoding,
  or the user's array) and its runs on the simulator, Lava and Loihi 2;
- :mod:`.info`     ``info``: a netlist's layers, neurons and synapses as text;
- :mod:`.summary`  the reports of ``export``, ``convert``, ``run`` and ``train-bntt`` as text.

The main job and ``convert`` are :mod:`neurosim.workflow`; ``train-bntt`` is
:mod:`neurosim.bntt.workflow`.
"""
