"""Rules step_count and gaussian_step_count: one checkpoint's samples at every solver and step
count against a fine solve, or a training subset's Gaussian and empirical denoisers against the
Gaussian's exact limit."""

import _src  # noqa: F401  (makes src/ importable)

import numpy as np
import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.dynamics import closed_form_step_count, network_step_count
from hiddengauss.gaussian import GaussianModel
from hiddengauss.generation import latent_seeds
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]):
    set_threads(snakemake.threads)
    e, s = snakemake.params.settings, snakemake.params.sampling
    dev = resolve_device(s["device"])
    train, shape = load_split_images(snakemake.input.train_split, snakemake.input.data, dev)
    seeds, dim = latent_seeds(e["n_samples"], s["seed_offset"]), int(np.prod(shape))
    if "checkpoints" in snakemake.input.keys():  # rule step_count: the network
        denoise, _ = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
        rows = network_step_count(denoise, train, seeds, dim, e, dev)
    else:  # rule gaussian_step_count
        rows = closed_form_step_count(GaussianModel.load(snakemake.input.gaussian, dev), train, seeds, dim, e, dev)
    write_csv(pd.DataFrame(rows), snakemake.output[0])
