"""Rule teleportation: skip the first k sampler steps with the Gaussian closed form."""

import _src  # noqa: F401  (makes src/ importable)

import numpy as np
import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.gaussian import GaussianModel
from hiddengauss.generation import latent_seeds, teleportation_rows
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]):
    s = snakemake.params.sampling
    dev = resolve_device(s["device"])
    net, _ = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    gauss = GaussianModel.load(snakemake.input.gaussian, dev)
    train, shape = load_split_images(snakemake.input.train_split, snakemake.input.data, dev)
    seeds = latent_seeds(min(s["teleport_samples"], s["n_samples"]), s["seed_offset"])
    rows = teleportation_rows(net, gauss, seeds, int(np.prod(shape)), s["teleport_sampler"], s["teleport_skips"], train,
                              batch=s["batch_size"])  # fmt: skip
    write_csv(pd.DataFrame(rows), snakemake.output[0])
