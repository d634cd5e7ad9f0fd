"""Rule collect_table: concatenate per-unit tables into one tidy table."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.io import script_logging, write_csv
from hiddengauss.tables import concat_with_keys

with script_logging(snakemake.log[0]):
    p = snakemake.params
    write_csv(concat_with_keys(list(snakemake.input), p.key_columns, p.columns), snakemake.output[0])
