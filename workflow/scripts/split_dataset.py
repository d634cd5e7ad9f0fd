"""Rule split_dataset: the indices of one split (held-out set or training subset)."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.dataset import read_attrs
from hiddengauss.io import script_logging
from hiddengauss.splits import save_split

with script_logging(snakemake.log[0]) as log:
    p, split = snakemake.params, snakemake.wildcards.split
    n_images = int(read_attrs(snakemake.input.data)["count"])
    idx = save_split(snakemake.output[0], split, n_images, p.seed, p.held_out, data_file=snakemake.input.data,
                     external=p.external)  # fmt: skip
    log.info("split %s: %d of %d images (seed %d)", split, len(idx), n_images, p.seed)
