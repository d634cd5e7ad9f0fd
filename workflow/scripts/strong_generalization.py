"""Rule strong_generalization: agreement of two models trained on disjoint halves S1 and S2."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.generation import strong_generalization_row
from hiddengauss.io import script_logging, write_csv

with script_logging(snakemake.log[0]):
    i = snakemake.input
    train1, _ = load_split_images(i.split1, i.data)
    train2, _ = load_split_images(i.split2, i.data)
    heldout, _ = load_split_images(i.heldout_split, i.heldout_data)
    rows, items = zip(*(strong_generalization_row(i.s1, i.s2, i.g1, i.g2, train1, train2, s, heldout)
                        for s in snakemake.params.samplers))  # fmt: skip
    write_csv(pd.DataFrame(list(rows)), snakemake.output.table)
    write_csv(pd.concat(items, ignore_index=True), snakemake.output.per_latent)
