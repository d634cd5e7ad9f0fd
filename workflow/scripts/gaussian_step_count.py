"""Rule gaussian_step_count: a training subset's Gaussian and empirical denoisers at every solver
and step count (the Gaussian against its exact limit)."""

import _src  # noqa: F401  (makes src/ importable)

import numpy as np
import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.dynamics import closed_form_step_count
from hiddengauss.gaussian import GaussianModel
from hiddengauss.generation import latent_seeds
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads

with script_logging(snakemake.log[0]):
    set_threads(snakemake.threads)
    e, s = snakemake.params.settings, snakemake.params.sampling
    dev = resolve_device(s["device"])
    gauss = GaussianModel.load(snakemake.input.gaussian, dev)
    train, shape = load_split_images(snakemake.input.train_split, snakemake.input.data, dev)
    seeds = latent_seeds(e["n_samples"], s["seed_offset"])
    write_csv(pd.DataFrame(closed_form_step_count(gauss, train, seeds, int(np.prod(shape)), e, dev)), snakemake.output[0])
