"""The netlist: schema (:mod:`.schema`), synapse kinds (:mod:`.synapses`), shorthands
(:mod:`.build`) and HDF5 files (:mod:`.hdf5`)."""
from neurosim.netlist.schema import (  # noqa: F401
    CUBA, INPUT, RMP, Flatten, Input, Netlist, Population, Projection, Schedule,
)
from neurosim.netlist.synapses import Conv, Dense, Identity, Pool  # noqa: F401
from neurosim.netlist.build import conv, dense, identity, join, pool  # noqa: F401
