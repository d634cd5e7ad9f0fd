"""Rule sample_gaussian: the Gaussian model's samples (exact map and ODE solvers with D_G) and the
empirical-optimal denoiser's samples of one training subset, from the shared latents."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.dataset import load_split_images
from hiddengauss.empirical import empirical_optimal_denoiser
from hiddengauss.gaussian import GaussianModel
from hiddengauss.generation import latent_seeds, sample_sets, save_samples
from hiddengauss.io import script_logging
from hiddengauss.sampling import seeded_latents

with script_logging(snakemake.log[0]):
    s = snakemake.params.sampling
    gauss = GaussianModel.load(snakemake.input.gaussian)
    train, shape = load_split_images(snakemake.input.train_split, snakemake.input.data)
    seeds = latent_seeds(s["n_samples"], s["seed_offset"])
    sets = sample_sets(
        {"gaussian": gauss.denoise, "empirical": lambda x, sig: empirical_optimal_denoiser(x, sig, train)},
        s["samplers"], seeds, gauss.dim, s["batch_size"], s["trajectories"], options=s,
    )  # fmt: skip
    exact = gauss.sample(seeded_latents(seeds, gauss.dim)).numpy().astype("float32")
    save_samples(snakemake.output[0], sets, seeds, shape, extra={"gaussian/closed_form/samples": exact})
