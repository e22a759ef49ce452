#!/usr/bin/env python
"""The main job: ``python deploy/export.py`` trains, converts, exports and measures (see --help).

Same as ``neurosim export``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurosim.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
