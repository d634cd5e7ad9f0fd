"""Rule gaussian_linearity: the Gaussian denoiser's own linearity curves (the baseline of Fig 1)."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.analysis import linearity_rows
from hiddengauss.dataset import load_split_images
from hiddengauss.gaussian import GaussianModel
from hiddengauss.io import script_logging, write_csv
from hiddengauss.schedules import sigma_grid

with script_logging(snakemake.log[0]):
    a = snakemake.params.analysis
    y, _ = load_split_images(*snakemake.input.inputs)
    gauss = GaussianModel.load(snakemake.input.gaussian)
    rows, _ = linearity_rows(gauss.denoise, y, sigma_grid(a["linearity_sigmas"]), a["alphas"], a["n_pairs"], a["noise_seed"])
    write_csv(pd.DataFrame(rows), snakemake.output[0])
