"""Rule step_count: one checkpoint's samples at every solver and step count against a fine solve."""

import _src  # noqa: F401  (makes src/ importable)

import numpy as np
import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.dynamics import network_step_count
from hiddengauss.generation import latent_seeds
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]):
    set_threads(snakemake.threads)
    e, s = snakemake.params.settings, snakemake.params.sampling
    dev = resolve_device(s["device"])
    denoise, _ = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    train, shape = load_split_images(snakemake.input.train_split, snakemake.input.data, dev)
    seeds = latent_seeds(e["n_samples"], s["seed_offset"])
    write_csv(pd.DataFrame(network_step_count(denoise, train, seeds, int(np.prod(shape)), e, dev)), snakemake.output[0])
