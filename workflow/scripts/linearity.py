"""Rule linearity: the linearity curves of one checkpoint's denoiser (Fig 1), on noisy held-out
pairs and on pure noise, with the per-pair items behind the claim's interval."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.analysis import linearity_rows
from hiddengauss.dataset import load_split_images
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.schedules import sigma_grid
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]):
    set_threads(snakemake.threads)
    a = snakemake.params.analysis
    dev = resolve_device(snakemake.params.device)
    denoise, _ = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    y, _ = load_split_images(*snakemake.input.inputs, device=dev)
    rows, items = linearity_rows(denoise, y, sigma_grid(a["linearity_sigmas"]), a["alphas"], a["n_pairs"], a["noise_seed"])
    write_csv(pd.DataFrame(rows), snakemake.output.linearity)
    write_csv(items, snakemake.output.linearity_items)
