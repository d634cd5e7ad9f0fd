"""Rule runs_table: one row per experiment x evaluated checkpoint, with checkpoint metadata."""

import _src  # noqa: F401  (makes src/ importable)

from pathlib import Path

from hiddengauss.io import script_logging, write_csv
from hiddengauss.tables import runs_table

with script_logging(snakemake.log[0]):
    dirs = {Path(d).parent.name: d for d in snakemake.input}  # results/.../runs/{run}/checkpoints
    write_csv(runs_table(snakemake.params.rows, dirs.__getitem__), snakemake.output[0])
