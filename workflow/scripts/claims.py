"""Rule claims: a verdict on each of the paper's claims from this run's tables."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.claims import evaluate_claims
from hiddengauss.io import script_logging, write_csv

with script_logging(snakemake.log[0]) as log:
    claims = evaluate_claims({k: pd.read_csv(v) for k, v in snakemake.input.items()}, **snakemake.params.claims)
    for _, c in claims.iterrows():
        log.info("%s: %.4g [%.4g, %.4g] (threshold %s, p %.3g) -> %s; %s", c.claim_id, c.value, c.ci_low, c.ci_high,
                 c.threshold, c.p_value, c.verdict, c.note)  # fmt: skip
    write_csv(claims, snakemake.output[0])
