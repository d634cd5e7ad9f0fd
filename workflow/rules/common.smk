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
from hiddengauss.splits import SUBSET_PATTERN, SplitError

try:
    config = validate_config(
        config,
        schema_path=Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
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


wildcard_constraints:
    dataset=DATASET,
    which="dataset|evalset",
    split=SUBSET_PATTERN,
    subset=r"n[0-9]+(?:s2)?",
    run=RUN_PATTERN,
    epoch=r"[0-9]+",


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
    ]


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


def hardware_params(section):
    return {k: section[k] for k in ("device", "tf32", "bf16", "compile")}


def checkpoint_dirs():
    return expand(f"{RESULTS}/runs/{{run}}/checkpoints", run=sorted(study.runs))
