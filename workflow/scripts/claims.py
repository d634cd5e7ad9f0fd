"""Rule claims: a verdict on each of the paper's claims from this run's tables."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.claims import evaluate_claims
from hiddengauss.io import script_logging, write_csv

with script_logging(snakemake.log[0]) as log:
    claims = evaluate_claims({k: pd.read_csv(v) for k, v in snakemake.input.items()})
    for _, c in claims.iterrows():
        log.info("%s: %s = %.4g (threshold %s) -> holds %s", c.claim_id, c.statistic, c.value, c.threshold, c.holds)
    write_csv(claims, snakemake.output[0])
