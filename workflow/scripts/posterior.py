"""Rule posterior: the empirical posterior's effective number of images and target variance
against σ, and how far the network's answer is from the nearest image and from D_G."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.analysis import distance_inputs
from hiddengauss.dataset import load_split_images
from hiddengauss.dynamics import posterior_rows
from hiddengauss.gaussian import GaussianModel
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.schedules import sigma_grid
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]):
    set_threads(snakemake.threads)
    e, a = snakemake.params.settings, snakemake.params.analysis
    dev = resolve_device(a["device"])
    denoise, _ = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    gauss = GaussianModel.load(snakemake.input.gaussian, dev)
    y, _ = load_split_images(*snakemake.input.inputs, device=dev)
    train, _ = load_split_images(snakemake.input.train_split, snakemake.input.data, device=dev)
    y, noise = distance_inputs(y, e["n_inputs"], a["noise_seed"])  # the distance inputs: their images and noise seed
    rows = posterior_rows(y, noise, sigma_grid(e["sigmas"]), train, denoise, gauss.denoise)
    write_csv(pd.DataFrame(rows), snakemake.output[0])
