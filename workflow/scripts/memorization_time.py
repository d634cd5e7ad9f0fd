"""Rule memorization_time: tau_mem and tau_gen per training-set size and their exponents in N, from
the memorization curves of every checkpoint (docs/claims.md, memorization_time_linear_in_n)."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.io import script_logging, write_csv
from hiddengauss.memorization_time import curve_frame, memorization_time_table

with script_logging(snakemake.log[0]) as log:
    i, m = snakemake.input, snakemake.params.settings
    curves = curve_frame(pd.read_csv(i.curve), pd.read_csv(i.runs))
    table = memorization_time_table(curves, pd.read_csv(i.per_sample), m["level"], m["bootstrap"], m["seed"])
    for r in table.itertuples():
        log.info("%s N=%s: %.4g [%.4g, %.4g] (%s)", r.quantity, r.dataset_size, r.value, r.ci_low, r.ci_high, r.status)
    write_csv(table, snakemake.output[0])
