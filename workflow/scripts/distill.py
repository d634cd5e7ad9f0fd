"""Rule distill: the affine map closest to a checkpoint's denoiser at every σ of the grid."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.analysis import distill_rows
from hiddengauss.dataset import load_split_images
from hiddengauss.distill import save_linear_maps
from hiddengauss.gaussian import GaussianModel
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.schedules import sigma_grid
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]):
    set_threads(snakemake.threads)
    a = snakemake.params.analysis
    dev = resolve_device(a["device"])
    denoise, _ = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    y, _ = load_split_images(*snakemake.input.inputs, device=dev)
    dcfg = a["distill"]
    rows, maps, diagonal = distill_rows(
        denoise, y, sigma_grid(a["sigmas"]), GaussianModel.load(snakemake.input.gaussian, dev),
        method=dcfg["method"], samples_per_dim=dcfg["samples_per_dim"], ridge=dcfg["ridge"],
        seed=a["noise_seed"], sgd_epochs=dcfg["sgd_epochs"], batch=a["batch_size"],
    )  # fmt: skip
    save_linear_maps(snakemake.output.linear, maps, dcfg["store"])
    write_csv(pd.DataFrame(rows), snakemake.output.table)
    write_csv(diagonal, snakemake.output.eigen_diagonal)
