"""Rule figure: one figure of outputs.md (PNG and PDF) from the tables and the stored samples."""

import _src  # noqa: F401  (makes src/ importable)

from pathlib import Path

import pandas as pd

from hiddengauss.analysis import load_split_images
from hiddengauss.figures import FIGURE_TABLE_NAMES, FigureData, draw
from hiddengauss.io import atomic_path, script_logging

with script_logging(snakemake.log[0]):
    inp = snakemake.input
    tables = {k: pd.read_csv(v) for k, v in inp.items() if k in FIGURE_TABLE_NAMES}
    paths = lambda key: [inp[key]] if isinstance(inp.get(key), str) else list(inp.get(key) or [])  # noqa: E731
    files = lambda key: {Path(p).stem: p for p in paths(key)}  # noqa: E731
    samples = {(Path(p).parent.name, int(Path(p).stem[5:])): p for p in paths("samples")}  # {run}/epoch{E}.h5
    gaussian, splits = files("gaussian_samples"), files("splits")
    data = FigureData(
        tables,
        samples_path=lambda run, epoch: samples[run, int(epoch)],
        gaussian_samples_path=gaussian.__getitem__,
        training_images=lambda subset: load_split_images(splits[subset], inp.data)[0].numpy(),
        options=snakemake.params.options,
    )
    with atomic_path(snakemake.output.png) as png, atomic_path(snakemake.output.pdf) as pdf:
        draw(snakemake.wildcards.figure, data, png, pdf)
