"""Rule figure: one figure of the registry (PNG and PDF) from the tables and the stored samples."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.figures import FigureData, draw
from hiddengauss.io import atomic_path, script_logging
from hiddengauss.study import TABLES

with script_logging(snakemake.log[0]):
    inp, index = snakemake.input, snakemake.params.samples
    tables = {k: pd.read_csv(v) for k, v in inp.items() if k in TABLES}
    listed = lambda key: [inp[key]] if isinstance(inp.get(key), str) else list(inp.get(key) or [])  # noqa: E731
    samples = {(c["run"], int(c["epoch"])): p for c, p in zip(index["checkpoints"], listed("samples"))}
    closed = {(c["run"], int(c["epoch"])): p for c, p in zip(index["checkpoints"], listed("closed_form_samples"))}
    gaussian = dict(zip(index["subsets"], listed("gaussian_samples")))
    splits = dict(zip(index["subsets"], listed("splits")))
    data = FigureData(
        tables,
        samples_path=lambda run, epoch: samples[run, int(epoch)],
        gaussian_samples_path=gaussian.__getitem__,
        closed_form_samples_path=(lambda run, epoch: closed[run, int(epoch)]) if closed else None,
        training_images=lambda subset: load_split_images(splits[subset], inp.data)[0].numpy(),
        options=snakemake.params.options,
    )
    with atomic_path(snakemake.output.png) as png, atomic_path(snakemake.output.pdf) as pdf:
        draw(snakemake.wildcards.figure, data, png, pdf)
