"""Exchange formats of other tools: NIR (:mod:`neurosim.interop.nir_io`)."""
