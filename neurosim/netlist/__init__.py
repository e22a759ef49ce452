"""The netlist: schema (:mod:`.schema`), neuron kinds (:mod:`.neurons`), synapse kinds (:mod:`.synapses`), shorthands
(:mod:`.build`) and HDF5 files (:mod:`.hdf5`)."""
from neurosim.netlist.schema import INPUT, Flatten, Input, Netlist, Population, Projection, Schedule  # noqa: F401
from neurosim.netlist.neurons import CUBA, RMP  # noqa: F401
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool  # noqa: F401
from neurosim.netlist.build import conv, dense, identity, join, pool  # noqa: F401
