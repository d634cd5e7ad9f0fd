"""Rule distributions: distribution distances among the seven image sets of one
strong-generalization pair (models and Gaussians of S1 and S2, their training images, held-out)."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.dataset import load_split_images
from hiddengauss.distributions import distance_table
from hiddengauss.generation import distribution_sets
from hiddengauss.io import script_logging, write_csv

with script_logging(snakemake.log[0]) as log:
    i, p = snakemake.input, snakemake.params.distributions
    train1, shape = load_split_images(i.split1, i.data)
    train2, _ = load_split_images(i.split2, i.data)
    heldout, _ = load_split_images(i.heldout_split, i.heldout_data)
    sets = distribution_sets(i.s1, i.s2, i.g1, i.g2, train1, train2, heldout, p["sampler"])
    n = len(next(iter(sets.values())))
    log.info("distances among %d sets of %d images (%s samples), %d bootstrap resamples", len(sets), n, p["sampler"], p["bootstrap"])
    swd = {"patch": p["swd_patch"], "per_image": p["swd_per_image"], "projections": p["swd_projections"]}
    table, contrasts = distance_table(sets, shape, p["bootstrap"], p["seed"], p["k"], swd)
    for frame, out in ((table, snakemake.output.table), (contrasts, snakemake.output.contrasts)):
        frame.insert(0, "n", n)
        frame.insert(0, "sampler", p["sampler"])
        write_csv(frame, out)
