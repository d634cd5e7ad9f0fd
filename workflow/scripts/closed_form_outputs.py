"""Rule closed_form_outputs: every enabled closed-form model's outputs on the distance inputs,
once per training subset (they do not depend on a network); measure_denoisers compares them
with every checkpoint trained on the subset."""

import _src  # noqa: F401  (makes src/ importable)

from hiddengauss.analysis import closed_form_outputs, save_closed_form_outputs
from hiddengauss.dataset import load_split_images
from hiddengauss.gaussian import GaussianModel
from hiddengauss.io import script_logging
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.schedules import sigma_grid

with script_logging(snakemake.log[0]) as log:
    set_threads(snakemake.threads)
    s, inp = snakemake.params.settings, snakemake.input
    dev = resolve_device(snakemake.params.device)
    y, _ = load_split_images(*inp.inputs, device=dev)
    train, shape = load_split_images(inp.train_split, inp.data, device=dev)
    gauss = GaussianModel.load(inp.gaussian, dev)
    b = s["baselines"]
    log.info("closed-form models %s of %d training images", ", ".join(b["models"]), len(train))
    outputs = closed_form_outputs(b, gauss, train, shape, y, sigma_grid(s["sigmas"]), s["n_inputs"], s["noise_seed"])
    save_closed_form_outputs(snakemake.output[0], outputs, s)
