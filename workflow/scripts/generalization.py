"""Rule generalization: memorization and generalization of a checkpoint's samples."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.generation import generalization_rows
from hiddengauss.io import script_logging, write_csv

with script_logging(snakemake.log[0]):
    train, _ = load_split_images(snakemake.input.train_split, snakemake.input.data)
    rows, items = generalization_rows(snakemake.input.samples, snakemake.input.gaussian_samples, train)
    write_csv(pd.DataFrame(rows), snakemake.output.table)
    write_csv(items, snakemake.output.per_sample)
