"""Rule sample_checkpoint: samples of a checkpoint's network and of its distilled linear model,
from the shared latents, with per-step denoised estimates for trajectory figures."""

import _src  # noqa: F401  (makes src/ importable)

import numpy as np

from hiddengauss.distill import linear_family, load_linear_maps
from hiddengauss.generation import latent_seeds, sample_sets, save_samples
from hiddengauss.io import script_logging
from hiddengauss.runtime import resolve_device
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]) as log:
    s, linear_samplers = snakemake.params.sampling, snakemake.params.linear_samplers
    dev = resolve_device(s["device"])
    net, ckpt = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    spec = ckpt["spec"]
    shape = (spec["img_channels"], spec["img_resolution"], spec["img_resolution"])
    seeds = latent_seeds(s["n_samples"], s["seed_offset"])
    dim = int(np.prod(shape))
    sets = sample_sets({"network": net}, s["samplers"], seeds, dim, s["batch_size"], s["trajectories"], dev, options=s)
    if linear_samplers:  # decided when the DAG is planned (Study.linear_samplers)
        linear = {"linear": linear_family(load_linear_maps(snakemake.input.linear, dev))}
        sets.update(sample_sets(linear, linear_samplers, seeds, dim, s["batch_size"], s["trajectories"], dev, options=s))
    else:
        log.info("no linear-model samples: no configured sampler runs on the distilled σ grid (or W is not stored)")
    save_samples(snakemake.output[0], sets, seeds, shape)
