"""Rule sample_checkpoint: samples of a checkpoint's network and of its distilled linear model,
from the shared latents, with per-step denoised estimates for trajectory figures."""

import _src  # noqa: F401  (makes src/ importable)

import numpy as np

from hiddengauss.analysis import checkpoint_denoiser, linear_family, load_linear_maps
from hiddengauss.generation import latent_seeds, sample_sets, save_samples
from hiddengauss.io import script_logging
from hiddengauss.runtime import resolve_device
from hiddengauss.sampling import PRESETS

with script_logging(snakemake.log[0]) as log:
    s = snakemake.params.sampling
    dev = resolve_device(s["device"])
    net, ckpt = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    spec = ckpt["spec"]
    shape = (spec["img_channels"], spec["img_resolution"], spec["img_resolution"])
    seeds = latent_seeds(s["n_samples"], s["seed_offset"])
    dim = int(np.prod(shape))
    sets = sample_sets({"network": net}, s["samplers"], seeds, dim, s["batch_size"], s["trajectories"], dev, options=s)
    try:
        maps = load_linear_maps(snakemake.input.linear)
        fitted = np.array(sorted(maps))
        usable = [n for n in s["samplers"] if all(np.isclose(fitted, v).any() for v in PRESETS[n].sigmas()[:-1])]
        linear = {"linear": linear_family(maps)}
        sets.update(sample_sets(linear, usable, seeds, dim, s["batch_size"], s["trajectories"], dev, options=s))
    except ValueError as err:
        log.warning("no linear-model samples: %s", err)
    save_samples(snakemake.output[0], sets, seeds, shape)
