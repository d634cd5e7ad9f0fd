"""Rule fit_gaussian: mean, covariance and eigenbasis of one training subset."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.gaussian import fit_gaussian_h5
from hiddengauss.io import script_logging

with script_logging(snakemake.log[0]) as log:
    g = snakemake.params
    fit_gaussian_h5(
        snakemake.input.data, snakemake.input.split, snakemake.output[0], subset=snakemake.wildcards.subset,
        chunk_size=g.chunk_size, store_dtype=g.store_dtype, method=g.method, device=g.device, threads=snakemake.threads, log=log,
    )  # fmt: skip
