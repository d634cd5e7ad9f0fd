# Maps the study's plan (hiddengauss.study) to paths: config validation, wildcard constraints,
# file patterns and the input functions of the rules. No study logic lives here.
import functools
import re
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
if sys.path[0] != SRC:  # this checkout's package first, before any installed copy
    sys.path.insert(0, SRC)

from snakemake.logging import logger

from hiddengauss import study as plan
from hiddengauss.captions import figure_description
from hiddengauss.config import ConfigError, validate_config
from hiddengauss.dataset import available_count, unreadable_sources
from hiddengauss.io import file_sha256
from hiddengauss.splits import SPLIT_PATTERN, SUBSET_PATTERN, SplitError

try:
    config.update(  # in place, so Snakemake's own view of the config has the defaults too
        validate_config(
            config,
            schema_path=Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
        )
    )
    study = plan.Study(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RESULTS = f"results/{study.name}"
DATA = f"{RESULTS}/data/{{datafile}}.h5"
SPLIT = f"{RESULTS}/splits/{{split}}.h5"
GAUSSIAN = f"{RESULTS}/gaussian/{{subset}}.h5"
CHECKPOINTS = f"{RESULTS}/runs/{{run}}/checkpoints"
EVAL = f"{RESULTS}/eval/{{run}}/epoch{{epoch}}"
EVAL_TABLE = f"{EVAL}/{{table}}.csv"
BASELINE = f"{RESULTS}/eval/gaussian/{{subset}}/{{table}}.csv"
CLOSED_FORM_OUTPUTS = f"{RESULTS}/eval/gaussian/{{subset}}/closed_form_outputs.h5"
PAIR = f"{RESULTS}/eval/pairs/{{pair}}/{{table}}.csv"
SAMPLES = f"{RESULTS}/samples/{{run}}/epoch{{epoch}}.h5"
CLOSED_FORM_SAMPLES = f"{RESULTS}/samples/{{run}}/epoch{{epoch}}_closed_forms.h5"
GAUSSIAN_SAMPLES = f"{RESULTS}/samples/gaussian/{{subset}}.h5"
TABLE = f"{RESULTS}/tables/{{table}}.csv"


PREPARED = {f: DATA.format(datafile=f) for f, _ in study.data_sections()}
SOURCE_ERRORS, MISSING_DATA = unreadable_sources(
    [(key, study.data_source(f), PREPARED[f]) for f, key in study.data_sections()]
)
if SOURCE_ERRORS:
    raise WorkflowError("data source problem:\n  - " + "\n  - ".join(SOURCE_ERRORS))
for problem in MISSING_DATA:
    logger.warning(
        f"warning: {problem} (a dry run plans anyway; a real run stops here)"
    )
try:
    study.check_counts(
        *(available_count(study.data_source(f), p) for f, p in PREPARED.items())
    )
except SplitError as err:
    raise WorkflowError(f"config/data mismatch: {err}") from None


# networks trained elsewhere (config pretrained): a missing file warns in a dry run, stops a real one
PRETRAINED_FILES = {rid: e["path"] for rid, e in study.pretrained.items()}
MISSING_NETWORKS = [
    f"config key 'pretrained.{rid}.path': network file {p} does not exist"
    for rid, p in PRETRAINED_FILES.items()
    if not Path(p).is_file()
]
for problem in MISSING_NETWORKS:
    logger.warning(
        f"warning: {problem} (a dry run plans anyway; a real run stops here)"
    )


onstart:
    if MISSING_DATA or MISSING_NETWORKS:
        raise WorkflowError(
            "inputs not found:\n  - "
            + "\n  - ".join(MISSING_DATA + MISSING_NETWORKS)
        )


wildcard_constraints:
    datafile="|".join(plan.DATA_FILES),
    split=SPLIT_PATTERN,
    subset=SUBSET_PATTERN,
    run=plan.RUN_PATTERN,
    epoch=r"[0-9]+",
    table="|".join(n for n, t in plan.TABLES.items() if t.collected),
    figure="|".join(study.figures()),
    pair=plan.PAIR_PATTERN,


def section_params(section, *keys):
    """The keys of one config section that a rule uses, so that changing any other key does not
    rerun it (Snakemake reruns a job when its params change)."""
    return {k: config[section][k] for k in keys if k in config[section]}


SAMPLE_KEYS = ("n_samples", "seed_offset", "samplers", "trajectories", "dtype")
SAMPLE_KEYS += ("s_churn", "s_min", "s_max", "s_noise", "batch_size")
# memorization_curve draws its own sampler and sample count (experiments.memorization_time):
# of the sampling section it uses only these, so n_samples, samplers, trajectories do not rerun it
MEMORIZATION_SAMPLE_KEYS = (
    "seed_offset",
    "dtype",
    "s_churn",
    "s_min",
    "s_max",
    "s_noise",
)
MEMORIZATION_SAMPLE_KEYS += ("batch_size", "device")
BASELINE_KEYS = (
    "models",
    "mixture_components",
    "local_threshold",
    "local_threshold_scope",
    "local_temperature",
)
BASELINE_KEYS += ("patch_min", "els_patch_sizes", "els_inputs", "els_padding", "seed")
# What the stored closed-form outputs were computed on: rule closed_form_outputs records it in
# the file, measure_denoisers refuses a file made with anything else.
# The linearity probe of networks (rule linearity) and of their Gaussian models (gaussian_linearity)
LINEARITY_SETTINGS = section_params(
    "analysis", "linearity_sigmas", "alphas", "n_pairs", "noise_seed"
)
CLOSED_FORM_SETTINGS = dict(
    **section_params("analysis", "sigmas", "n_inputs", "noise_seed"),
    baselines=section_params("baselines", *BASELINE_KEYS),
)


def get_final_output():
    return [
        *expand(GAUSSIAN, subset=study.training_subsets),
        SPLIT.format(split="heldout"),
        *expand(CHECKPOINTS, run=sorted(study.runs)),
        *expand(TABLE, table=[t.name for t in study.tables()]),
        *expand(
            f"{RESULTS}/figures/{{figure}}.{{ext}}",
            figure=study.figures(),
            ext=("png", "pdf"),
        ),
        f"{RESULTS}/claims.csv",
    ]


def split_data(split):
    return DATA.format(datafile=study.split_data_file(split))


def get_split_data(wildcards):
    return split_data(wildcards.split)


def of_run_subset(pattern, wildcard="subset"):
    """An input function: ``pattern`` with the training subset of the job's run filled in."""
    return lambda wc: pattern.format(**{wildcard: plan.Run.parse(wc.run).subset})


get_run_split = of_run_subset(SPLIT, "split")
get_run_gaussian = of_run_subset(GAUSSIAN)
get_run_gaussian_samples = of_run_subset(GAUSSIAN_SAMPLES)


def analysis_inputs(subset):
    """[split file, data file] of the images y behind the noisy evaluation inputs y + σn."""
    split = study.analysis_split(subset)
    return [SPLIT.format(split=split), split_data(split)]


def one_of(ids):
    """A wildcard regex matching exactly these ids (none: a pattern that matches nothing)."""
    return "|".join(re.escape(i) for i in ids) or "(?!)"


def get_pretrained_file(wildcards):
    """The network file of an imported run (none while it is missing: a dry run plans anyway,
    a real run stops at onstart naming it)."""
    path = PRETRAINED_FILES[wildcards.run]
    return path if Path(path).is_file() else []


@functools.cache
def pretrained_sha256(path):
    """Content hash of a network file, a param of import_network: a changed file reruns the
    import and everything downstream, even with an older modification time."""
    return file_sha256(path) if Path(path).is_file() else "missing"


def get_run_analysis_inputs(wildcards):
    return analysis_inputs(plan.Run.parse(wildcards.run).subset)


def get_subset_analysis_inputs(wildcards):
    return analysis_inputs(wildcards.subset)


def get_run_closed_form_outputs(wildcards):
    """measure_denoisers: the stored outputs of the run's subset's closed-form models (none
    when ``baselines.models`` is empty)."""
    if not study.closed_form_models():
        return []
    return CLOSED_FORM_OUTPUTS.format(subset=plan.Run.parse(wildcards.run).subset)


def get_table_sources(wildcards):
    """The per-unit files that collect_table concatenates into table ``wildcards.table``."""
    paths = {
        "checkpoint": lambda k: EVAL_TABLE.format(
            run=k["run_id"], epoch=k["epoch"], table=wildcards.table
        ),
        "baseline": lambda k: BASELINE.format(
            subset=k["subset"], table=wildcards.table
        ),
        "pair": lambda k: PAIR.format(pair=k["pair_id"], table=wildcards.table),
    }
    return [paths[kind](keys) for kind, keys in study.table_units(wildcards.table)]


def get_closed_form_inputs(wildcards):
    """sample_closed_forms: the subset's Gaussian, images and Gaussian/empirical samples, the
    checkpoint's network samples and, when the ELS machine is enabled, its calibration.
    """
    subset = plan.Run.parse(wildcards.run).subset
    out = dict(
        gaussian=GAUSSIAN.format(subset=subset),
        train_split=SPLIT.format(split=subset),
        data=DATA.format(datafile="dataset"),
        samples=SAMPLES.format(run=wildcards.run, epoch=wildcards.epoch),
        gaussian_samples=GAUSSIAN_SAMPLES.format(subset=subset),
    )
    if "els" in study.closed_form_models():
        out["els_calibration"] = EVAL_TABLE.format(
            run=wildcards.run, epoch=wildcards.epoch, table="els_calibration"
        )
    return out


def get_pair_inputs(wildcards):
    p = study.pair(wildcards.pair)
    runs = {half: plan.Run.parse(p[half]) for half in ("s1", "s2")}
    out = {half: SAMPLES.format(run=r.id, epoch=p["epoch"]) for half, r in runs.items()}
    for i, r in enumerate(runs.values(), 1):
        out[f"g{i}"] = GAUSSIAN_SAMPLES.format(subset=r.subset)
        out[f"split{i}"] = SPLIT.format(split=r.subset)
    out["heldout_split"] = SPLIT.format(split="heldout")
    out["heldout_data"] = split_data("heldout")
    return {**out, "data": DATA.format(datafile="dataset")}


def get_figure_inputs(wildcards):
    """Tables (by name) and stored samples a figure reads; nothing else reaches figure code."""
    figure = plan.FIGURES[wildcards.figure]
    made = {t.name for t in study.tables()}
    out = {t: TABLE.format(table=t) for t in ("runs", *figure.tables) if t in made}
    checkpoints = study.figure_samples(figure.name)
    if checkpoints and figure.samples == plan.CLOSED_FORMS:
        out["closed_form_samples"] = [
            CLOSED_FORM_SAMPLES.format(run=r.id, epoch=e) for r, e in checkpoints
        ]
    if checkpoints:
        subsets = study.figure_subsets(figure.name)
        out["samples"] = [SAMPLES.format(run=r.id, epoch=e) for r, e in checkpoints]
        out["gaussian_samples"] = expand(GAUSSIAN_SAMPLES, subset=subsets)
        out["splits"] = expand(SPLIT, split=subsets)
        out["data"] = DATA.format(datafile="dataset")
    return out


def get_figure_samples(wildcards):
    """Which run, epoch or subset each sample and split file of the figure belongs to."""
    checkpoints = study.figure_samples(wildcards.figure)
    return dict(
        checkpoints=[dict(run=r.id, epoch=e) for r, e in checkpoints],
        subsets=study.figure_subsets(wildcards.figure),
    )


def get_figure_options(wildcards):
    return study.figure_options(wildcards.figure)


def get_figure_caption(wildcards):
    """The drawing function's docstring and the config it was drawn from (report caption)."""
    return figure_description(wildcards.figure, config)


def experiment_settings(name, *keys):
    """experiments.<name> without its sizes and scale, which name the runs (changing them adds
    or removes checkpoints but does not rerun the others); only ``keys`` when given, so that a
    rule reruns only for the settings it uses."""
    e = config["experiments"].get(name, {})
    return {
        k: v
        for k, v in e.items()
        if k not in ("sizes", "model_scale") and (not keys or k in keys)
    }


STEP_COUNT_KEYS = ("solvers", "steps", "reference_steps", "n_samples")
POSTERIOR_KEYS = ("sigmas", "n_inputs")
COMMITMENT_KEYS = ("n_samples", "commitment_sampler", "components", "modes")
COMMITMENT_KEYS += ("settle_tol", "perturbation", "perturbation_seed")


def get_claims_inputs(wildcards):
    return {t: TABLE.format(table=t) for t in study.claims_tables()}
