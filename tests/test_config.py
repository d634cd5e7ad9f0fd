"""Config schema: bad values stop the run with a message naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from hiddengauss.config import ConfigError, Study, validate_config
from hiddengauss.splits import SplitError

ROOT = Path(__file__).resolve().parents[1]


def base():
    return {"dataset": {"name": "digits", "source": "digits"}, "experiments": {"dataset_size": {"sizes": [8, 16], "model_scale": 4}}}


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")))
def test_shipped_configs_validate(path):
    cfg = validate_config(yaml.safe_load(path.read_text()))
    Study(cfg)


def test_defaults_filled():
    cfg = validate_config(base())
    assert cfg["splits"]["seed"] == 0
    assert cfg["evaluation"]["size"] == 256
    assert cfg["dataset"]["skip_bad_images"] is False


def edit(path, value):
    cfg = copy.deepcopy(base())
    node = cfg
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value
    return cfg


@pytest.mark.parametrize(
    "path,value,pattern",
    [
        (["splits", "seed"], "zero", r"'splits.seed': 'zero' is not of type 'integer'"),
        (["splits", "seed"], -1, r"'splits.seed': -1 is out of range \(minimum 0\)"),
        (["splits", "sead"], 1, r"unknown config key 'sead' under 'splits' \(allowed: seed\)"),
        (["bogus"], 1, r"unknown config key 'bogus' at the top level"),
        (["dataset", "source"], "imagenet", r"'dataset.source': 'imagenet' is not one of the allowed values \['digits'"),
        (["experiments", "dataset_size", "sizes"], [], r"'experiments.dataset_size.sizes': the list must not be empty"),
        (["experiments", "dataset_size", "sizes"], [0, 8], r"'experiments.dataset_size.sizes.0': 0 is out of range"),
        (["experiments", "dataset_size", "model_scale"], 0, r"'experiments.dataset_size.model_scale': 0 is out of range"),
        (["experiments", "architecture"], {"dataset_size": 8, "model_scale": 4, "archs": ["unet"]}, r"'experiments.architecture.archs.0': 'unet' is not one of"),
        (["gaussian", "store_dtype"], "float16", r"'gaussian.store_dtype': 'float16' is not one of"),
        (["training", "lr"], "fast", r"'training.lr': 'fast' is not of type 'number'"),
        (["model", "arch"], "unet", r"'model.arch': 'unet' is not one of the allowed values \['ncsnpp', 'ddpmpp', 'adm'\]"),
        (["experiments", "model_scale"], {"dataset_size": 8, "scales": [4, -8]}, r"'experiments.model_scale.scales.1': -8 is out of range \(minimum 1\)"),
        (["experiments", "model_scale"], {"dataset_size": 8, "scales": []}, r"'experiments.model_scale.scales': the list must not be empty"),
        (["experiments", "strong_generalization"], {"sizes": [8], "model_scale": 0},
         r"'experiments.strong_generalization.model_scale': 0 is neither of the accepted forms .*0 is out of range \(minimum 1\)"),
        (["experiments", "strong_generalization"], {"sizes": [8, 16], "model_scale": [4]},
         r"'experiments.strong_generalization.model_scale': \[4\] needs one scale per entry of sizes \[8, 16\]"),
        (["dataset", "name"], "my data", r"'dataset.name': 'my data' does not match"),
    ],
)
def test_bad_config_names_key(path, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        validate_config(edit(path, value))


def test_missing_dataset_name():
    with pytest.raises(ConfigError, match=r"'dataset': 'name' is a required property"):
        validate_config({"dataset": {"source": "digits"}})


def test_study_subsets_and_count_check():
    cfg = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    study = Study(cfg)
    assert "n16s2" in study.training_subsets and "n1024" in study.training_subsets
    study.check_counts(1797)
    with pytest.raises(SplitError, match=r"1024 is larger than the 744 images available \(1000 images in dataset 'digits' minus 256 held out\)"):
        study.check_counts(1000)


def test_linearity_pairs_must_fit_in_held_out_set():
    cfg = validate_config({**base(), "evaluation": {"size": 50}, "analysis": {"n_pairs": 30}})
    with pytest.raises(ConfigError, match=r"'analysis.n_pairs': 30 pairs need 60 held-out images, but evaluation.size is 50"):
        Study(cfg)


def test_shared_runs_are_trained_once_and_evaluated_where_needed():
    study = Study(validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text())))
    runs = study.runs
    assert len(runs) == 14  # 4 sizes + 3 more scales + 1 epochs(shared) + 2 pairs + 1 small-scale twin + 3 archs (1 shared)
    for exp in ("dataset_size", "model_scale", "training_epochs", "strong_generalization"):
        assert "ncsnpp_c32_n16_s0" in {r.id for r, _ in study.experiments[exp]}
    main = runs["ncsnpp_c32_n16_s0"]
    assert study.final_epoch(main) == 3125  # 50 kimg / 16 images
    assert 500 in study.checkpoint_epochs(main) and study.checkpoint_epochs(main)[-1] == 3125
    assert study.evaluated_epochs(main) == study.checkpoint_epochs(main)  # the training-epochs run: all
    assert study.evaluated_epochs(runs["ncsnpp_c32_n256_s0"]) == [195]
    kinds = {p["kind"] for p in study.pairs()}
    assert kinds == {"full", "small_scale", "early_stop"}
    early = next(p for p in study.pairs() if p["kind"] == "early_stop")
    assert early["epoch"] == 500 and early["s2"] == "ncsnpp_c32_n16s2_s0"
