"""Rules commitment and gaussian_commitment: the coarse-to-fine tables (trajectory dimension,
when each eigenmode settles, how much a perturbation at each step changes the sample) of one
checkpoint's network, or of a training subset's Gaussian model."""

import _src  # noqa: F401  (makes src/ importable)

import numpy as np
import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.dynamics import commitment_rows
from hiddengauss.gaussian import GaussianModel
from hiddengauss.generation import latent_seeds
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]):
    set_threads(snakemake.threads)
    e, s = snakemake.params.settings, snakemake.params.sampling
    dev = resolve_device(s["device"])
    gauss = GaussianModel.load(snakemake.input.gaussian, dev)
    train, shape = load_split_images(snakemake.input.train_split, snakemake.input.data, dev)
    if "checkpoints" in snakemake.input.keys():  # rule commitment: the network
        name, (denoise, _) = "network", checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    else:  # rule gaussian_commitment
        name, denoise = "gaussian", gauss.denoise
    tables = commitment_rows(name, denoise, gauss, train, latent_seeds(e["n_samples"], s["seed_offset"]), int(np.prod(shape)), e, dev)
    for table, rows in tables.items():
        write_csv(pd.DataFrame(rows), snakemake.output[table])
