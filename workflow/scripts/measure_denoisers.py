"""Rule measure_denoisers: distances from one checkpoint's network to the linear, Gaussian,
empirical-optimal and closed-form denoisers (and between them), with their per-input items."""

import _src  # noqa: F401  (makes src/ importable)

import pandas as pd

from hiddengauss.analysis import (
    CALIBRATION,
    closed_form_denoisers,
    distance_rows,
    load_closed_form_outputs,
)
from hiddengauss.dataset import load_split_images
from hiddengauss.distill import linear_family, load_linear_maps
from hiddengauss.empirical import empirical_optimal_denoiser
from hiddengauss.gaussian import GaussianModel
from hiddengauss.io import script_logging, write_csv
from hiddengauss.runtime import resolve_device, set_threads
from hiddengauss.schedules import sigma_grid
from hiddengauss.training import checkpoint_denoiser

with script_logging(snakemake.log[0]) as log:
    set_threads(snakemake.threads)
    a = snakemake.params.analysis
    dev = resolve_device(a["device"])
    denoise, _ = checkpoint_denoiser(snakemake.input.checkpoints, snakemake.wildcards.epoch, dev)
    y, _ = load_split_images(*snakemake.input.inputs, device=dev)
    train, _ = load_split_images(snakemake.input.train_split, snakemake.input.data, device=dev)
    gauss = GaussianModel.load(snakemake.input.gaussian, dev)
    denoisers = {
        "network": denoise,
        "gaussian": gauss.denoise,
        "empirical": lambda x, s: empirical_optimal_denoiser(x, s, train),
    }
    try:
        denoisers["linear"] = linear_family(load_linear_maps(snakemake.input.linear, dev))
    except ValueError as err:  # analysis.distill.store: none
        log.warning("no linear-model distances: %s", err)
    models, limits, calibration = {}, {}, []
    if snakemake.input.closed_forms:  # computed once per training subset (rule closed_form_outputs)
        stored = load_closed_form_outputs(snakemake.input.closed_forms, snakemake.params.closed_form_inputs, dev)
        models, limits, calibration = closed_form_denoisers(stored, denoise, y, a["noise_seed"])
    log.info("closed-form models: %s", ", ".join(models) or "none (baselines.models is empty)")
    rows, items = distance_rows({**denoisers, **models}, y, sigma_grid(a["sigmas"]), a["n_inputs"], a["noise_seed"], limits)
    write_csv(pd.DataFrame(rows), snakemake.output.distances)
    write_csv(items, snakemake.output.distance_items)
    write_csv(pd.DataFrame(calibration, columns=CALIBRATION), snakemake.output.els_calibration)
