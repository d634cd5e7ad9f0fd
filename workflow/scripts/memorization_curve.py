"""Rule memorization_curve: one checkpoint of the memorization_time experiment, sampled and scored
for memorization (against its training images) and KID to the held-out images."""

import _src  # noqa: F401  (makes src/ importable)

import numpy as np
import pandas as pd

from hiddengauss.dataset import load_split_images
from hiddengauss.generation import latent_seeds, memorization_curve_rows
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]) as log:
    i, s, m = snakemake.input, snakemake.params.sampling, snakemake.params.settings
    dev = resolve_device(s["device"])
    net, ckpt = checkpoint_denoiser(i.checkpoints, snakemake.wildcards.epoch, dev)
    spec = ckpt["spec"]
    dim = int(np.prod((spec["img_channels"], spec["img_resolution"], spec["img_resolution"])))
    train, _ = load_split_images(i.train_split, i.data)
    heldout, _ = load_split_images(i.heldout_split, i.heldout_data)
    seeds = latent_seeds(m["n_samples"], s["seed_offset"])
    rows, items = memorization_curve_rows(net, train, heldout, m["sampler"], seeds, dim, m, dev, s)
    log.info("epoch %s: memorized %.3f, KID to held-out %.4g", snakemake.wildcards.epoch,
             rows[0]["memorized_fraction"], rows[0]["kid_heldout"])
    write_csv(pd.DataFrame(rows), snakemake.output.table)
    write_csv(items, snakemake.output.per_sample)
