"""Rule spectrum_table: the eigenvalues of every training subset's covariance, tidy."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.gaussian import spectrum_table
from hiddengauss.io import script_logging, write_csv

with script_logging(snakemake.log[0]):
    write_csv(spectrum_table(list(snakemake.input)), snakemake.output[0])
