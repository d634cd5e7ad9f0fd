"""Rule sample_closed_forms: same-latent samples of every enabled closed-form model of a
checkpoint's training subset (the ELS machine with the patch sizes calibrated against that
checkpoint's network), and their memorization (closed_form_generalization)."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.closed_forms import baseline_denoisers
from hiddengauss.dataset import load_split_images
from hiddengauss.gaussian import GaussianModel
from hiddengauss.generation import closed_form_generalization_rows, closed_form_sample_sets, save_samples
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device

with script_logging(snakemake.log[0]) as log:
    s, b, inp = snakemake.params.sampling, snakemake.params.baselines, snakemake.input
    dev = resolve_device(s["device"])
    gauss = GaussianModel.load(inp.gaussian, dev)
    train, shape = load_split_images(inp.train_split, inp.data, device=dev)
    els = None
    if "els_calibration" in inp.keys():
        cal = pd.read_csv(inp.els_calibration)
        els = dict(zip(cal.loc[cal["chosen"], "sigma"], cal.loc[cal["chosen"], "patch"].astype(int)))
        log.info("ELS patch size per calibrated sigma: %s", {round(k, 4): v for k, v in sorted(els.items())})
    models = baseline_denoisers(b, gauss, train, shape, els)
    n = min(b["n_samples"], s["n_samples"])
    counts = {m: min(b["els_samples"], n) if m == "els" else n for m in models}
    sets, seeds = closed_form_sample_sets(models, counts, s["samplers"], s["seed_offset"], gauss.dim, s["batch_size"],
                                          dev, options=s)  # fmt: skip
    save_samples(snakemake.output.samples, sets, seeds, shape)
    rows = closed_form_generalization_rows(snakemake.output.samples, inp.samples, inp.gaussian_samples, train, n)
    write_csv(pd.DataFrame(rows), snakemake.output.table)
