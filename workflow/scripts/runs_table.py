"""Rule runs_table: one row per experiment x evaluated checkpoint, with checkpoint metadata."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.io import script_logging, write_csv
from hiddengauss.tables import runs_table

with script_logging(snakemake.log[0]):
    dirs = dict(zip(snakemake.params.runs, snakemake.input.checkpoints))  # in the order of the rule's input
    write_csv(runs_table(snakemake.params.rows, dirs.__getitem__), snakemake.output[0])
