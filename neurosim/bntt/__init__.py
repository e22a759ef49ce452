"""BNTT: SNNs trained from scratch with Batch Normalization Through Time (Kim & Panda 2021).

Kim & Panda, "Revisiting Batch Normalization for Training Low-latency Deep Spiking Neural
Networks from Scratch", Front. Neurosci. 15:773954 (2021), arXiv 2010.01729; official code
Intelligent-Computing-Lab-Yale/BNTT-Batch-Normalization-Through-Time (``model.py``, ``train.py``).

Modules, each holding one thing:

- :mod:`.neuron`     the LIF neuron with a surrogate gradient (the netlist's float equations);
- :mod:`.norm`       BNTT (one BatchNorm per time step, no beta) and the two baselines;
- :mod:`.encoding`   signed Poisson rate coding of images, event data binned into frames;
- :mod:`.network`    the network on lava-dl SLAYER synapses (time-last tensors);
- :mod:`.fold`       BNTT folded into per-step scale and bias, exported as a netlist;
- :mod:`.early_exit` the early-exit step from the learnt gammas;
- :mod:`.train`      training (resumable, DistributedDataParallel under ``torchrun``).
"""
