# Shared set-up: config validation, the study it describes, wildcard constraints, input functions.
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from hiddengauss.config import (
    RUN_PATTERN,
    ConfigError,
    Run,
    Study,
    available_count,
    validate_config,
)
from hiddengauss.captions import figure_description
from hiddengauss.splits import SUBSET_PATTERN, SplitError

try:
    config.update(  # in place, so Snakemake's own view of the config has the defaults too
        validate_config(
            config,
            schema_path=Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
        )
    )
    study = Study(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

DATASET = study.name
RESULTS = f"results/{DATASET}"

try:
    study.check_counts(
        available_count(config["dataset"], f"{RESULTS}/data/dataset.h5"),
        available_count(
            config["evaluation"].get("dataset"), f"{RESULTS}/data/evalset.h5"
        ),
    )
except SplitError as err:
    raise WorkflowError(f"config/data mismatch: {err}") from None


TABLES = (
    "distillation",
    "eigen_diagonal",
    "linearity",
    "denoiser_distances",
    "generalization",
    "teleportation",
    "strong_generalization",
)


wildcard_constraints:
    dataset=DATASET,
    which="dataset|evalset",
    split=SUBSET_PATTERN,
    subset=r"n[0-9]+(?:s2)?",
    run=RUN_PATTERN,
    epoch=r"[0-9]+",
    table="|".join(TABLES),
    figure="|".join(study.figures()),
    pair=f"{RUN_PATTERN}_e[0-9]+",


def data_source(which):
    """The config section that describes data file ``which`` (dataset or evalset)."""
    return config["dataset"] if which == "dataset" else config["evaluation"]["dataset"]


def split_source(split):
    """The data file a split indexes: held-out images may come from a separate set."""
    if split == "heldout" and study.external_evaluation:
        return f"{RESULTS}/data/evalset.h5"
    return f"{RESULTS}/data/dataset.h5"


def gaussian_models():
    return expand(f"{RESULTS}/gaussian/{{subset}}.h5", subset=study.training_subsets)


def get_final_output():
    return [
        *gaussian_models(),
        f"{RESULTS}/splits/heldout.h5",
        f"{RESULTS}/tables/spectrum.csv",
        *checkpoint_dirs(),
        *expand(f"{RESULTS}/tables/{{table}}.csv", table=study_tables()),
        f"{RESULTS}/tables/runs.csv",
        *expand(
            f"{RESULTS}/figures/{{figure}}.{{ext}}",
            figure=study.figures(),
            ext=("png", "pdf"),
        ),
        f"{RESULTS}/claims.csv",
    ]


def study_tables():
    """The collected tables this config produces (strong_generalization needs S1/S2 pairs)."""
    return [t for t in TABLES if t != "strong_generalization" or study.pairs()]


def train_spec(run_id):
    """Every value that determines a training run's weights (rule train's params)."""
    run = Run.parse(run_id)
    m, t = config["model"], config["training"]
    return dict(
        arch=run.arch,
        model_channels=run.scale,
        channel_mult=m["channel_mult"],
        num_blocks=m["num_blocks"],
        attn_resolutions=m["attn_resolutions"],
        dropout=m["dropout"],
        sigma_data=m["sigma_data"],
        epochs=study.final_epoch(run),
        checkpoint_epochs=study.checkpoint_epochs(run),
        batch_size=t["batch_size"],
        lr=t["lr"],
        warmup_fraction=t["warmup_fraction"],
        ema_halflife_fraction=t["ema_halflife_fraction"],
        ema_rampup_ratio=t["ema_rampup_ratio"],
        p_mean=t["p_mean"],
        p_std=t["p_std"],
        augment_p=t["augment_p"],
        seed=run.seed,
    )


def section_params(section, *keys):
    """The keys of one config section that a rule uses, so that changing any other key does not
    rerun it (Snakemake reruns a job when its params change)."""
    return {k: config[section][k] for k in keys if k in config[section]}


SAMPLE_KEYS = (
    "n_samples",
    "seed_offset",
    "samplers",
    "trajectories",
    "dtype",
    "s_churn",
    "s_min",
    "s_max",
    "s_noise",
    "batch_size",
)


def hardware_params(section):
    return {k: section[k] for k in ("device", "tf32", "bf16", "compile")}


def checkpoint_dirs():
    return expand(f"{RESULTS}/runs/{{run}}/checkpoints", run=sorted(study.runs))


def analysis_inputs(wildcards, subset=None):
    """[split file, data file] of the images y behind the noisy evaluation inputs y + σn."""
    if config["analysis"]["inputs"] == "heldout":
        return [f"{RESULTS}/splits/heldout.h5", split_source("heldout")]
    subset = subset or Run.parse(wildcards.run).subset
    return [f"{RESULTS}/splits/{subset}.h5", f"{RESULTS}/data/dataset.h5"]


def table_sources(table):
    """(files, identifying columns) that collect_table concatenates into ``table``."""
    if table == "strong_generalization":
        pairs = study.pairs()
        files = [f"{RESULTS}/eval/pairs/{p['pair_id']}.csv" for p in pairs]
        return files, pairs
    if table == "teleportation":
        evals = [
            (rid, study.final_epoch(run)) for rid, run in sorted(study.runs.items())
        ]
    else:
        evals = study.evaluations()
    files, keys = [], []
    for run_id, epoch in evals:
        run = Run.parse(run_id)
        files.append(f"{RESULTS}/eval/{run_id}/epoch{epoch}/{table}.csv")
        keys.append(
            dict(
                run_id=run_id,
                epoch=epoch,
                arch=run.arch,
                model_scale=run.scale,
                dataset_size=run.size,
                subset=run.subset,
                seed=run.seed,
            )
        )
    if table == "linearity":
        for s in study.training_subsets:
            files.append(f"{RESULTS}/eval/gaussian/{s}/linearity.csv")
            keys.append(
                dict(
                    run_id=f"gaussian:{s}",
                    epoch=-1,
                    arch="gaussian",
                    model_scale=-1,
                    dataset_size=int(s[1:].removesuffix("s2")),
                    subset=s,
                    seed=-1,
                )
            )
    return files, keys


def pair_info(pair_id):
    return next(p for p in study.pairs() if p["pair_id"] == pair_id)


def pair_inputs(wildcards):
    p = pair_info(wildcards.pair)
    r1, r2 = Run.parse(p["s1"]), Run.parse(p["s2"])
    return dict(
        s1=samples_file(r1, p["epoch"]),
        s2=samples_file(r2, p["epoch"]),
        g1=f"{RESULTS}/samples/gaussian/{r1.subset}.h5",
        g2=f"{RESULTS}/samples/gaussian/{r2.subset}.h5",
        split1=f"{RESULTS}/splits/{r1.subset}.h5",
        split2=f"{RESULTS}/splits/{r2.subset}.h5",
        data=f"{RESULTS}/data/dataset.h5",
    )


FIGURE_TABLES = {
    "linearity": ["linearity"],
    "linear_vs_gaussian": ["denoiser_distances"],
    "same_noise_samples": [],
    "gaussian_structure": ["spectrum", "distillation", "eigen_diagonal"],
    "dataset_size": ["denoiser_distances", "generalization"],
    "model_scale": ["denoiser_distances", "generalization"],
    "training_epochs": ["denoiser_distances", "generalization"],
    "strong_generalization": ["strong_generalization"],
    "architectures": ["denoiser_distances"],
    "teleportation": ["teleportation"],
}


def samples_file(run, epoch):
    return f"{RESULTS}/samples/{run.id}/epoch{epoch}.h5"


def figure_inputs(wildcards):
    """Tables (by name) and stored samples a figure reads; nothing else reaches figure code."""
    name = wildcards.figure
    out = {t: f"{RESULTS}/tables/{t}.csv" for t in ["runs", *FIGURE_TABLES[name]]}
    samples, subsets = [], set()
    if name == "same_noise_samples":
        run, epoch = study.showcase()
        samples.append(samples_file(run, epoch))
        subsets.add(run.subset)
    elif name in ("dataset_size", "model_scale", "training_epochs", "architectures"):
        exp = "architecture" if name == "architectures" else name
        for run, epoch in study.experiment_evaluations(
            exp, final_only=name != "training_epochs"
        ):
            samples.append(samples_file(run, epoch))
            subsets.add(run.subset)
    elif name == "strong_generalization":
        for p in study.pairs():
            for rid in (p["s1"], p["s2"]):
                samples.append(samples_file(Run.parse(rid), p["epoch"]))
                subsets.add(Run.parse(rid).subset)
    if samples:
        out["samples"] = samples
        out["gaussian_samples"] = [
            f"{RESULTS}/samples/gaussian/{s}.h5" for s in sorted(subsets)
        ]
        out["splits"] = [f"{RESULTS}/splits/{s}.h5" for s in sorted(subsets)]
        out["data"] = f"{RESULTS}/data/dataset.h5"
    return out


def figure_caption(wildcards):
    """The figure function's docstring and the config it was drawn from (report caption)."""
    return figure_description(wildcards.figure, config)


def figure_options(wildcards):
    """config["figures"], plus for Fig 3 the (run id, epoch) that Study.showcase chose."""
    if wildcards.figure != "same_noise_samples":
        return config["figures"]
    run, epoch = study.showcase()
    return {**config["figures"], "showcase": [run.id, epoch]}


def claims_inputs(wildcards):
    names = ["runs", "linearity", "denoiser_distances", "generalization"]
    if study.pairs():
        names.append("strong_generalization")
    return {t: f"{RESULTS}/tables/{t}.csv" for t in names}
