"""Make the package in ``src/`` importable from workflow scripts even when it is not installed
(e.g. in a bare ``--sdm conda`` environment). Snakemake puts this folder on ``sys.path``."""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if sys.path[0] != SRC:  # first, even when Snakemake already appended it after site-packages, so that
    sys.path.insert(0, SRC)  # an installed copy from another checkout (an editable .pth) never wins
