"""Loihi 2 deployment: its published limits (:mod:`.limits`), a per-layer deployment report
(:mod:`.report`), quantisation to its number formats (:mod:`.quantize`) and runs through
``Loihi2HwCfg`` when Intel's Loihi extension is installed (:mod:`.backend`)."""
